// Preloaded into the server with NODE_OPTIONS="--import <this file>" when a load run profiles it:
// Node 20 refuses --cpu-prof in NODE_OPTIONS, and the server is spawned by a helper that passes no
// node flags. Starts V8's sampling profiler (1 ms interval, as --cpu-prof) before the server loads
// and writes <TH_CPU_PROF_DIR>/CPU.<pid>.cpuprofile when the process exits (not on SIGKILL).
import { mkdirSync, writeFileSync } from 'node:fs';
import inspector from 'node:inspector';
import process from 'node:process';

const dir = process.env.TH_CPU_PROF_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // A session on the main thread answers synchronously, so this completes inside 'exit'.
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/CPU.${process.pid}.cpuprofile`, JSON.stringify(result.profile));
    });
  });
}
