// Named counters (the Rust one is ../counter): values are int64, so bigint in JavaScript.
import { mutation, query } from "./_generated/server";
import { v } from "convex/values";

const INT64_MAX = 2n ** 63n - 1n;

async function find(db, name) {
  return await db
    .query("counters")
    .withIndex("by_name", (q) => q.eq("name", name))
    .unique();
}

export const increment = mutation({
  args: { name: v.string(), by: v.optional(v.int64()) },
  handler: async (ctx, { name, by = 1n }) => {
    const counter = await find(ctx.db, name);
    if (counter === null) {
      await ctx.db.insert("counters", { name, value: by });
      return by;
    }
    const value = counter.value + by;
    if (value > INT64_MAX || value < -INT64_MAX - 1n) {
      throw new Error(`counter ${name} would overflow`);
    }
    await ctx.db.patch(counter._id, { value });
    return value;
  },
});

export const get = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const counter = await find(ctx.db, name);
    return counter === null ? 0n : counter.value;
  },
});
