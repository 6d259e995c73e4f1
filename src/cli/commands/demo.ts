import type { Command } from 'commander';
import { dashboardExtend, dashboardUrl } from '../dashboard.js';
import { runPlatformFlow } from '../demo/platform.js';
import { type DemoEvent, runDemo } from '../demo/scenario.js';
import { Exit, reportError } from '../io.js';

function line(e: DemoEvent): string {
  const mark = e.outcome === 'released' ? 'RELEASED' : e.outcome === 'refused' ? 'REFUSED ' : '        ';
  const why = e.reason ? ` [${e.code} ${e.reason}${e.failures ? `: ${e.failures.join(', ')}` : ''}]` : '';
  const flag = e.expected ? '' : '   <-- UNEXPECTED';
  return `${mark}  ${e.step}: ${e.detail}${why}${flag}`;
}

/** `vouchsafe demo`: the whole key-release path on the embedded default, with a readable timeline. */
export function register(program: Command): void {
  program
    .command('demo')
    .description(
      'run broker + proxy + simulated SVSM guests on SQLite in a temp dir: first boot, reboot, and the\n' +
        "refusals (tampered measurement, another instance's HOST_DATA, rolled-back state, clone)",
    )
    .option('--json', 'print the timeline as JSON')
    .option(
      '--platform',
      'the platform-identity flow instead: the CA service, the VMM device, a swtpm vTPM under the released key,\n' +
        'CERTIFY_EK, CERTIFY_AK, a quote a relying party verifies, reboot, and every refusal (needs swtpm, tpm2-tools)',
    )
    .option(
      '--keep-running',
      'afterwards, keep the broker running with its dashboard (the URL is printed) until interrupted',
    )
    .addHelpText(
      'after',
      '\nNothing outside a temporary directory is written, and nothing leaves 127.0.0.1. Exit status 0 when\n' +
        'every step ended as expected (releases released, attacks refused), 1 otherwise.',
    )
    .action(async (o: { json?: boolean; keepRunning?: boolean; platform?: boolean }) => {
      try {
        if (o.platform) {
          const run = await runPlatformFlow((e) => {
            if (!o.json) process.stdout.write(`${line(e)}\n`);
          });
          if (o.json) process.stdout.write(`${JSON.stringify(run.events, null, 2)}\n`);
          process.exitCode = run.events.every((e) => e.expected) ? Exit.Ok : Exit.Rejected;
          return;
        }
        const events = await runDemo(
          (e) => {
            if (!o.json) process.stdout.write(`${line(e)}\n`);
          },
          o.keepRunning
            ? { extend: dashboardExtend(), hold: (b) => holdUntilInterrupted(b, o.json ?? false) }
            : {},
        );
        if (o.json) process.stdout.write(`${JSON.stringify(events, null, 2)}\n`);
        process.exitCode = events.every((e) => e.expected) ? Exit.Ok : Exit.Rejected;
      } catch (e) {
        process.exitCode = reportError(e, o.json ?? false);
      }
    });
}

/** `--keep-running`: prints where the dashboard is and how to sign in, then waits for SIGINT/SIGTERM. */
async function holdUntilInterrupted(
  b: { url: string; adminTokenPath: string },
  json: boolean,
): Promise<void> {
  // With --json on stderr, so that stdout stays one JSON document.
  (json ? process.stderr : process.stdout).write(
    `dashboard: ${dashboardUrl(b.url)}\n` +
      `  sign in with the admin token in ${b.adminTokenPath}\n` +
      '  press Ctrl-C to stop (the temporary directory is removed)\n',
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
