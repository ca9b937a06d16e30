// The seed's functions (../shared/reference/convex-actions.txt), in TypeScript.
import { action, internalMutation, internalQuery } from "./_generated/server";
import { internal } from "./_generated/api";
import { v } from "convex/values";

export const doSomething = action({
  args: { a: v.number() },
  handler: async (ctx, args) => {
    const data: number = await ctx.runQuery(internal.myAction.readData, {
      a: args.a,
    });
    await ctx.runMutation(internal.myAction.writeData, { a: data });
    return data;
  },
});

export const readData = internalQuery({
  args: { a: v.number() },
  handler: async (_ctx, args) => args.a * 2,
});

export const writeData = internalMutation({
  args: { a: v.number() },
  handler: async (ctx, args) => {
    await ctx.db.insert("counters", { name: "seed", value: args.a });
  },
});
