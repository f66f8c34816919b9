/**
 * The IPC side of a server script: reports the port to the parent, answers `'cpu'` with the process's CPU
 * time (so run.ts can tell server cost per request apart from the load generator's), exits with the parent.
 */
process.on('disconnect', () => process.exit(0));

export function reportToParent(port: number): void {
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
  process.send?.({ port });
}
