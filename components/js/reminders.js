// The scheduler example (the Rust one is ../reminders): reminders scheduled from a
// mutation, and the compaction of old chat messages that crons.js runs every hour.
import { internalMutation, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";

export const remind = mutation({
  args: { text: v.string(), delayMs: v.number() },
  handler: async (ctx, { text, delayMs }) => {
    if (!(delayMs >= 0 && Number.isFinite(delayMs))) {
      throw new Error("delayMs must be a number of milliseconds, at least 0");
    }
    // Part of this mutation's transaction: if it fails, nothing is scheduled.
    return await ctx.scheduler.runAfter(delayMs, internal.reminders.deliver, { text });
  },
});

export const deliver = internalMutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    await ctx.db.insert("notifications", { text, deliveredAt: Date.now() });
  },
});

export const notifications = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("notifications").collect(),
});

export const job = query({
  args: { id: v.id("_scheduled_functions") },
  handler: async (ctx, { id }) => await ctx.db.system.get(id),
});

const COMPACT_BATCH = 500;

// Keeps the newest `keep` messages and deletes older ones, a batch per run; schedules
// itself again at once while more remain.
export const compactMessages = internalMutation({
  args: { keep: v.number() },
  handler: async (ctx, args) => {
    const keep = Math.max(0, Math.floor(args.keep));
    const newest = await ctx.db.query("messages").order("desc").take(keep + COMPACT_BATCH + 1);
    const doomed = newest.slice(keep);
    for (const message of doomed.slice(0, COMPACT_BATCH)) {
      await ctx.db.delete(message._id);
    }
    if (doomed.length > COMPACT_BATCH) {
      await ctx.scheduler.runAfter(0, internal.reminders.compactMessages, args);
    }
    return Math.min(doomed.length, COMPACT_BATCH);
  },
});
