"""Re-running the user's code: cells, execution, time limits, the kernel's undo log, streams rewound."""
