import { query, mutation, internalQuery } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";

export const list = query({
  args: { channel: v.string() },
  handler: async (ctx, { channel }) =>
    await ctx.db
      .query("messages")
      .withIndex("by_channel", (q) => q.eq("channel", channel))
      .collect(),
});

export const send = mutation({
  args: { channel: v.string(), author: v.string(), body: v.string() },
  handler: async (ctx, message) => {
    console.log("sent to", message.channel);
    const id = await ctx.db.insert("messages", message);
    const count: number = await ctx.runQuery(internal.messages.count, {
      channel: message.channel,
    });
    return { id, count };
  },
});

export const count = internalQuery({
  args: { channel: v.string() },
  handler: async (ctx, { channel }): Promise<number> =>
    (
      await ctx.db
        .query("messages")
        .withIndex("by_channel", (q) => q.eq("channel", channel))
        .collect()
    ).length,
});

export const whoAmI = query({
  args: {},
  handler: async (ctx) => {
    const identity = await ctx.auth.getUserIdentity();
    return identity === null ? null : identity.subject;
  },
});
