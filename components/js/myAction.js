// The actions guide's example (../shared/reference/convex-actions.txt), in the guide's own
// form: a default-exported action that reads through an internal query and writes through
// an internal mutation of the same file, calling them by name.
import { action, internalMutation, internalQuery } from "./_generated/server";

export default action(async ({ runQuery, runMutation }, { a, b }) => {
  const data = await runQuery("myAction:readData", { a });
  const stored = `${b} (note ${data.length + 1} under ${a})`;
  await runMutation("myAction:writeData", { a, note: stored });
  console.log("stored", stored);
  return { before: data, stored };
});

export const readData = internalQuery(async ({ db }, { a }) => {
  const notes = await db
    .query("notes")
    .filter((q) => q.eq(q.field("a"), a))
    .collect();
  return notes.map((note) => note.note);
});

export const writeData = internalMutation(async ({ db }, { a, note }) => {
  await db.insert("notes", { a, note });
});
