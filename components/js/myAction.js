// The actions guide's example (../shared/reference/convex-actions.txt), in the guide's own
// form: a default-exported action that reads through an internal query of the same file,
// calls a third-party API with fetch (when given a `url`), and writes through an internal
// mutation, calling them by name. The same as the Rust one (../my-action).
import { action, internalMutation, internalQuery } from "./_generated/server";

export default action(async ({ runQuery, runMutation }, { a, b, url }) => {
  const data = await runQuery("myAction:readData", { a });
  let status;
  if (url !== undefined) {
    const response = await fetch(url);
    status = response.status;
    b = `${b}: ${await response.text()}`;
  }
  const stored = `${b} (note ${data.length + 1} under ${a})`;
  await runMutation("myAction:writeData", { a, note: stored });
  console.log("stored", stored);
  return status === undefined ? { before: data, stored } : { before: data, stored, status };
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
