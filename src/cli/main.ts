// The `paxosstore` command line.
import { Command } from "commander";
import { VERSION } from "../version.js";
import { registerDevCommand } from "./devCommand.js";
import { registerNodeCommand } from "./nodeCommand.js";
import { registerUnfenceCommand } from "./unfenceCommand.js";
import { registerBackupCommands } from "./backupCommands.js";

const program = new Command();
program.name("paxosstore").description("PaxosStore-TS: a replicated, strongly consistent key-value store").version(VERSION);
registerNodeCommand(program);
registerDevCommand(program);
registerUnfenceCommand(program);
registerBackupCommands(program);
(await import("./clientCommands.js")).registerClientCommands(program);
await program.parseAsync(process.argv);
