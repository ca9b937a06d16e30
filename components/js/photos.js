// The file storage example (the Rust one is ../photos): photo sharing with upload URLs,
// files served at their URL, and an action that stores a fetched image.
import { action, mutation, query } from "./_generated/server";
import { api } from "./_generated/api";
import { v } from "convex/values";

export const generateUploadUrl = mutation({
  args: {},
  handler: async (ctx) => await ctx.storage.generateUploadUrl(),
});

export const send = mutation({
  args: { storageId: v.id("_storage"), author: v.string() },
  handler: async (ctx, args) => await ctx.db.insert("photos", args),
});

export const list = query({
  args: {},
  handler: async (ctx) => {
    const photos = await ctx.db.query("photos").collect();
    return await Promise.all(
      photos.map(async (photo) => ({
        id: photo._id,
        author: photo.author,
        url: await ctx.storage.getUrl(photo.storageId),
      })),
    );
  },
});

export const remove = mutation({
  args: { id: v.id("photos") },
  handler: async (ctx, { id }) => {
    const photo = await ctx.db.get(id);
    if (photo === null) return;
    await ctx.storage.delete(photo.storageId);
    await ctx.db.delete(id);
  },
});

export const fetchAndStore = action({
  args: { url: v.string(), author: v.string() },
  handler: async (ctx, { url, author }) => {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`fetching ${url} answered ${response.status}`);
    const storageId = await ctx.storage.store(await response.blob());
    await ctx.runMutation(api.photos.send, { storageId, author });
    return storageId;
  },
});

export const metadata = query({
  args: { storageId: v.id("_storage") },
  handler: async (ctx, { storageId }) => await ctx.db.system.get(storageId),
});

export const read = action({
  args: { storageId: v.id("_storage") },
  handler: async (ctx, { storageId }) => {
    const blob = await ctx.storage.get(storageId);
    if (blob === null) return null;
    return { text: await blob.text(), contentType: blob.type };
  },
});

export const storeText = action({
  args: { text: v.string(), contentType: v.optional(v.string()) },
  handler: async (ctx, { text, contentType }) =>
    await ctx.storage.store(new Blob([text], { type: contentType ?? "" })),
});
