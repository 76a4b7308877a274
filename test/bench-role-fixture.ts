/** A bench role for test/bench-role-process.test.ts: echoes, fails on request, reports its args. */
import { benchRole, roleArgs, serveRole } from "../bench/role-process.ts";

if (benchRole() === "echo") {
  serveRole({
    echo: (p: unknown) => p,
    args: () => roleArgs<unknown>(),
    fail: async () => {
      throw new Error("asked to fail");
    },
  });
}
