// The software version, reported by `status` and the CLI.
export const VERSION = "0.1.0";
