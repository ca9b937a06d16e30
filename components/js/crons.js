// The example app's cron jobs, as in a Convex app: the compaction of old chat messages
// every hour (the Rust project declares the same in ../kiln.toml's [crons]).
import { cronJobs } from "convex/server";
import { internal } from "./_generated/api";

const crons = cronJobs();
crons.hourly(
  "compact-messages",
  { minuteUTC: 0 },
  internal.reminders.compactMessages,
  { keep: 1000 },
);
export default crons;
