/**
 * The comm with one notebook's kernel, across restarts and kernel changes: the extension registers
 * the comm target on each kernel (the kernel opens a comm per message it sends), hears hellos,
 * diagnoses and refusals, and answers a hello with the user's settings. When it attaches to a kernel
 * (a page reload, a notebook opened on a running kernel) it asks for the diagnoses the kernel issued
 * (`sync`); a dismissal goes to the kernel the same way, on a comm of its own.
 */
import type { ISessionContext } from '@jupyterlab/apputils';
import type { Kernel, KernelMessage as Messages } from '@jupyterlab/services';
import type { IDisposable } from '@lumino/disposable';

import type { IPanelState } from '../panel/wire';
import { configure, dismiss, parseKernelMessage, sync } from './protocol';
import { COMM_TARGET } from './wire';

/** What the channel tells its notebook. */
export interface IChannelEvents {
  /** A diagnosis issued by the kernel. */
  diagnosis(state: IPanelState): void;
  /** A protocol problem to show (null: none any more). */
  problem(text: string | null): void;
  /** The kernel restarted or was replaced: nothing it issued before can be applied. */
  restarted(): void;
}

export class KernelChannel implements IDisposable {
  private kernel: Kernel.IKernelConnection | null = null;
  private comm: Kernel.IComm | null = null;
  private disposed = false;

  constructor(
    context: ISessionContext,
    private autoDiagnose: () => boolean,
    private events: IChannelEvents
  ) {
    context.kernelChanged.connect((_, change) => {
      if (change.oldValue) {
        this.events.restarted();
      }
      this.attach(change.newValue);
    }, this);
    void context.ready.then(() => this.attach(context.session?.kernel ?? null));
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  dispose(): void {
    if (!this.disposed) {
      this.disposed = true;
      this.kernel?.statusChanged.disconnect(this.onStatus, this);
    }
  }

  /** Tell the kernel the settings it applies (it asked with its hello). */
  settingsChanged(): void {
    if (this.comm && !this.comm.isDisposed) {
      this.comm.send({ ...configure(this.autoDiagnose()) });
    }
  }

  private attach(kernel: Kernel.IKernelConnection | null): void {
    if (kernel === this.kernel || this.disposed) {
      return;
    }
    this.kernel?.statusChanged.disconnect(this.onStatus, this);
    this.kernel = kernel;
    this.comm = null;
    if (kernel) {
      kernel.registerCommTarget(COMM_TARGET, (comm, msg) => this.onOpen(comm, msg));
      kernel.statusChanged.connect(this.onStatus, this);
      // the diagnoses this kernel issued before this page knew it (a kernel without inplace_magic
      // closes the comm: there is nothing to know)
      this.request({ ...sync() });
    }
  }

  /** Tell the kernel to leave `diagnosisId` out of later syncs. */
  dismiss(diagnosisId: string): void {
    this.request({ ...dismiss(diagnosisId) });
  }

  /** Open a comm of our own to the kernel's target with `data`; the kernel answers on it. */
  private request(data: Parameters<Kernel.IComm['open']>[0]): void {
    const kernel = this.kernel;
    if (!kernel || kernel.isDisposed || this.disposed) {
      return;
    }
    try {
      const comm = kernel.createComm(COMM_TARGET);
      comm.onMsg = reply => this.onData(comm, reply.content.data);
      comm.open(data).done.catch(() => undefined);
    } catch {
      // the kernel is gone or restarting: a restart re-attaches and asks again
    }
  }

  private onStatus(_: Kernel.IKernelConnection, status: Messages.Status): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this.comm = null;
      this.events.restarted();
    }
  }

  private onOpen(comm: Kernel.IComm, msg: Messages.ICommOpenMsg): void {
    // the kernel opens a comm per message: keep the latest (for settings), close the one before
    if (this.comm && this.comm !== comm && !this.comm.isDisposed) {
      this.comm.close();
    }
    this.comm = comm;
    // the kernel answers on this comm what it refused
    comm.onMsg = reply => this.onData(comm, reply.content.data);
    this.onData(comm, msg.content.data);
  }

  private onData(comm: Kernel.IComm, data: unknown): void {
    const parsed = parseKernelMessage(data);
    if (!parsed.ok) {
      this.events.problem(parsed.problem);
      return;
    }
    const message = parsed.message;
    switch (message.type) {
      case 'hello':
        this.events.problem(null);
        comm.send({ ...configure(this.autoDiagnose()) });
        break;
      case 'diagnosis':
        this.events.problem(null);
        this.events.diagnosis(message.state);
        break;
      case 'diagnoses':
        this.events.problem(null);
        message.states.forEach(state => this.events.diagnosis(state));
        break;
      case 'refused':
        this.events.problem(message.message);
        break;
    }
  }
}
