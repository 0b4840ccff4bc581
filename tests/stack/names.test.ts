/** Stack names: only [A-Za-z0-9_-]+, so no name can point a reset or destroy outside .stack/. */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as stack from "../../local/stack.ts";

Deno.test("stack names: '..', paths and empty names are refused before any file is touched", async () => {
  for (const name of ["..", ".", "", "a/b", "../x", "/tmp", "dev/..", "a b", "x\n"]) {
    assert.throws(
      () => stack.stateDir(name),
      /stack name .* is not valid/s,
      `refused: ${JSON.stringify(name)}`,
    );
    await assert.rejects(
      stack.destroy({ name, quiet: true }),
      /is not valid/,
      `destroy refuses ${JSON.stringify(name)}`,
    );
  }
  for (const name of ["dev", "cli-start", "test_2", "A9"]) {
    assert.equal(stack.stateDir(name), join(stack.ROOT, ".stack", name));
  }
});

Deno.test("stack names: the stack command refuses `reset --name ..` with a usage error", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(stack.ROOT, "local/stack.ts"), "reset", "--name", ".."],
    cwd: stack.ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(out.code, 0);
  assert.match(new TextDecoder().decode(out.stderr), /stack name "\.\." is not valid/);
  assert.ok(Deno.statSync(join(stack.ROOT, "package.json")).isFile, "the repository is still there");
});
