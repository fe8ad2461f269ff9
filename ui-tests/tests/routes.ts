/**
 * Galata's request mocks (its in-memory settings, workspace state, config, user, and where asked its
 * kernels and sessions), served through the DevTools Fetch domain for the mocked API paths only,
 * instead of Playwright's `page.route`.
 *
 * Why: while any `page.route` is set, Playwright pauses every request of the page, whatever its URL
 * (Fetch.enable with the pattern "*": each one a round trip through the test's Node process), and
 * turns the browser's HTTP cache off. A JupyterLab load is a few hundred requests, nearly all of them
 * static files the server marks immutable (hashed names, `max-age=31536000, immutable`): every test
 * fetched them all again, the server served them again, and the renderer compiled their code again
 * without the code cache the HTTP cache keeps. Here the browser pauses only the requests Galata's
 * routes could match, and the cache keeps the static files from one test's load to the next.
 *
 * What a test sees of the mocks is unchanged: the same handlers (Galata's own), called with a route
 * and a request that do what Playwright's do for them (`fulfill`, `continue`, `abort`, `fallback`;
 * `url`, `method`, `headers`, the post data, and `request.fetch(request)`), newest route first as
 * Playwright calls them. The API answers are not cached (JupyterLab asks for them with `no-store`).
 * A route whose pattern is not one of Galata's goes to Playwright's `page.route` as before. At each
 * test's end the routes are removed with the Fetch domain's session (tests/tab.ts).
 */
import { galata } from '@jupyterlab/galata';
import type { CDPSession, Page } from '@playwright/test';

/** The URLs each of Galata's route patterns can match, as Fetch patterns (a superset: the handler's
 * own pattern decides, as in Playwright). */
const GLOBS = new Map<RegExp, string>([
  [galata.Routes.config, '*/api/config/*'],
  [galata.Routes.contents, '*/api/contents*'],
  [galata.Routes.customCSS, '*/custom/custom.css*'],
  [galata.Routes.extensions, '*/lab/api/extensions*'],
  [galata.Routes.kernels, '*/api/kernels*'],
  [galata.Routes.sessions, '*/api/sessions*'],
  [galata.Routes.settings, '*/api/settings*'],
  [galata.Routes.terminals, '*/api/terminals*'],
  [galata.Routes.translations, '*/api/translations*'],
  [galata.Routes.workspaces, '*/api/workspaces*'],
  [galata.Routes.user, '*/api/me*']
]);

type Handler = (route: PausedRoute, request: PausedRequest) => unknown;

interface IPausedEvent {
  requestId: string;
  request: {
    url: string;
    method: string;
    headers: Record<string, string>;
    postData?: string;
    postDataEntries?: { bytes?: string }[];
  };
}

/** What Galata's handlers read of a request, as Playwright's Request gives it. */
class PausedRequest {
  constructor(private readonly event: IPausedEvent) {}

  url(): string {
    return this.event.request.url;
  }

  method(): string {
    return this.event.request.method;
  }

  headers(): Record<string, string> {
    return { ...this.event.request.headers };
  }

  postDataBuffer(): Buffer | null {
    const { postData, postDataEntries } = this.event.request;
    if (postDataEntries?.length) {
      return Buffer.concat(postDataEntries.map(entry => Buffer.from(entry.bytes ?? '', 'base64')));
    }
    return postData === undefined ? null : Buffer.from(postData, 'utf8');
  }

  postData(): string | null {
    return this.postDataBuffer()?.toString('utf8') ?? null;
  }

  postDataJSON(): unknown {
    const data = this.postData();
    return data === null ? null : JSON.parse(data);
  }
}

/** A paused request's answer: Playwright's Route, for what Galata's handlers call. */
class PausedRoute {
  /** Whether the handler answered (otherwise the next route, as after Playwright's fallback). */
  answered = false;

  constructor(
    private readonly session: CDPSession,
    private readonly requestId: string,
    private readonly gone: () => boolean
  ) {}

  private async send(method: string, params: Record<string, unknown>): Promise<void> {
    this.answered = true;
    try {
      await this.session.send(method as 'Fetch.continueRequest', { requestId: this.requestId, ...params });
    } catch (error) {
      // the page left (the test ended) while its request waited, or navigated (a reload cancels
      // the requests in flight, and CDP then no longer knows their interception): nothing is left
      // to answer
      if (!this.gone() && !String(error).includes('Invalid InterceptionId')) {
        throw error;
      }
    }
  }

  async fulfill(options: {
    status?: number;
    body?: string | Buffer;
    contentType?: string;
    headers?: Record<string, string>;
  }): Promise<void> {
    const headers: Record<string, string> = { ...(options.headers ?? {}) };
    if (options.contentType) {
      headers['content-type'] = options.contentType;
    }
    const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(options.body);
    headers['content-length'] = String(body.length);
    await this.send('Fetch.fulfillRequest', {
      responseCode: options.status ?? 200,
      responseHeaders: Object.entries(headers).map(([name, value]) => ({ name, value })),
      body: body.toString('base64')
    });
  }

  async continue(): Promise<void> {
    await this.send('Fetch.continueRequest', {});
  }

  async abort(reason?: string): Promise<void> {
    await this.send('Fetch.failRequest', {
      errorReason: reason === 'addressunreachable' ? 'AddressUnreachable' : 'Failed'
    });
  }

  async fallback(): Promise<void> {
    // not answered: the next route's turn
  }
}

/** The routes of one test's page on the worker's tab. */
export class NarrowRoutes {
  private readonly routes: { pattern: RegExp; glob: string; handler: Handler }[] = [];
  private session: CDPSession | undefined;
  private disposed = false;

  constructor(private readonly tab: Page) {}

  /** `page.route`, for the page Galata sets up: its own patterns here, any other at Playwright's. */
  async route(url: unknown, handler: Handler): Promise<void> {
    const glob = url instanceof RegExp ? GLOBS.get(url) : undefined;
    if (glob === undefined) {
      await this.tab.route(url as string, handler as never);
      return;
    }
    this.routes.unshift({ pattern: url as RegExp, glob, handler });
    if (!this.session) {
      this.session = await this.tab.context().newCDPSession(this.tab);
      this.session.on('Fetch.requestPaused', event => this.paused(event as IPausedEvent));
    }
    const globs = [...new Set(this.routes.map(route => route.glob))];
    await this.session.send('Fetch.enable', {
      patterns: globs.map(urlPattern => ({ urlPattern, requestStage: 'Request' as const }))
    });
  }

  private async paused(event: IPausedEvent): Promise<void> {
    const session = this.session!;
    const request = new PausedRequest(event);
    for (const { pattern, handler } of [...this.routes]) {
      pattern.lastIndex = 0;
      if (!pattern.test(event.request.url)) {
        continue;
      }
      const route = new PausedRoute(session, event.requestId, () => this.disposed);
      await handler(route, request);
      if (route.answered) {
        return;
      }
    }
    await new PausedRoute(session, event.requestId, () => this.disposed).continue();
  }

  /** Remove every route (the test's end): the requests still paused are let go with the page. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.routes.length = 0;
    if (this.session) {
      await this.session.send('Fetch.disable').catch(() => undefined);
      await this.session.detach().catch(() => undefined);
      this.session = undefined;
    }
  }
}

/** The worker's tab as Galata's page set-up gets it: the same page, its `route` these routes'. */
export function withNarrowRoutes(tab: Page, routes: NarrowRoutes): Page {
  return new Proxy(tab, {
    get(target, property) {
      if (property === 'route') {
        return routes.route.bind(routes);
      }
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    }
  });
}
