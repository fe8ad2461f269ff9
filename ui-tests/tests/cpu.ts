/**
 * Each test's CPU, by kind, when `UI_TESTS_CPU_LOG` names a file (`make ui-test-cpu` sets it): one JSON
 * line per test with the CPU-seconds its worker spent on it (the worker's own Node process, and its
 * browser: every process below the worker) and, for a test on the worker's kernel, that kernel's.
 * `cpu_tree.py` counts the whole run by kind; this says which tests the CPU went to.
 *
 * Read from /proc. A process counts its own CPU and, once it has reaped them, its children's (a
 * browser's renderer of a closed context is reaped by the browser's zygote), so the sum over the live
 * processes below the worker keeps what its ended ones spent.
 */
import * as fs from 'fs';

const TICKS_PER_S = 100; // Linux's USER_HZ: the unit of /proc/<pid>/stat's times

interface IStat {
  parent: number;
  /** utime + stime + cutime + cstime, in ticks */
  ticks: number;
}

function stats(): Map<number, IStat> {
  const found = new Map<number, IStat>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) {
      continue;
    }
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // it ended meanwhile
    }
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    found.set(Number(name), { parent: Number(fields[1]), ticks });
  }
  return found;
}

/** CPU-seconds of every process below `root` (not `root` itself), ended ones they reaped included. */
function below(root: number, all: Map<number, IStat>): number {
  const tree = new Set([root]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, stat] of all) {
      if (!tree.has(pid) && tree.has(stat.parent)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  tree.delete(root);
  let ticks = 0;
  for (const pid of tree) {
    ticks += all.get(pid)!.ticks;
  }
  return ticks / TICKS_PER_S;
}

/**
 * The kernel process whose connection file names `id`, if it runs on this machine: a kernel the
 * server's zygote forked (kernel_zygote.py) has the zygote's command line, and is found in the
 * file where the zygote's provisioner writes each kernel's pid (`UI_TESTS_KERNEL_PIDS`).
 */
function kernelPid(id: string): number | undefined {
  const forked = process.env.UI_TESTS_KERNEL_PIDS;
  if (forked && fs.existsSync(forked)) {
    // the last line for the id: a restarted kernel is a new fork under the same id
    const lines = fs.readFileSync(forked, 'utf8').split('\n').filter(Boolean);
    const pids = lines.map(line => JSON.parse(line)).filter(line => line.kernel_id === id);
    if (pids.length) {
      return pids[pids.length - 1].pid as number;
    }
  }
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) {
      continue;
    }
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(`kernel-${id}.json`)) {
        return Number(name);
      }
    } catch {
      continue;
    }
  }
  return undefined;
}

interface ISample {
  node: number;
  browser: number;
  kernel: number;
}

function sample(kernel: number | undefined): ISample {
  const all = stats();
  const own = process.cpuUsage();
  return {
    node: (own.user + own.system) / 1e6,
    browser: below(process.pid, all),
    kernel: kernel !== undefined ? (all.get(kernel)?.ticks ?? 0) / TICKS_PER_S : 0
  };
}

/**
 * Measure what runs between this call and the returned function's, and append it to the log as the
 * test `title`'s. `kernelId` says the worker's kernel once it exists: a kernel started during the
 * test (the worker's first) counts wholly as this test's.
 */
export function startCpuRecord(kernelId: () => string | undefined): (title: string) => void {
  const log = process.env.UI_TESTS_CPU_LOG;
  if (!log) {
    return () => undefined;
  }
  const known = kernelId();
  const startKernel = known !== undefined ? kernelPid(known) : undefined;
  const start = sample(startKernel);
  return title => {
    const id = kernelId();
    const kernel = id !== undefined ? kernelPid(id) : undefined;
    const end = sample(kernel);
    const line = {
      test: title,
      node_s: +(end.node - start.node).toFixed(2),
      browser_s: +(end.browser - start.browser).toFixed(2),
      kernel_s:
        kernel !== undefined ? +(end.kernel - (startKernel === kernel ? start.kernel : 0)).toFixed(2) : null
    };
    fs.appendFileSync(log, JSON.stringify(line) + '\n');
  };
}
