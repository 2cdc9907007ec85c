/**
 * What a backend has opened, closed once, newest first, by its `close()`. A port opened on first
 * use is remembered here as it opens. One that fails to close does not keep the others open: the
 * first error is thrown once all have been tried.
 */
export class Closers {
  private readonly stack: Array<() => Promise<void> | void> = [];
  private readonly opened = new Map<string, unknown>();
  private closing?: Promise<void>;

  add(close: () => Promise<void> | void): void {
    this.stack.push(close);
  }

  /** The port named `name`, opened by `open` the first time it is asked for. */
  once<T extends { close(): Promise<void> }>(name: string, open: () => T): T {
    if (this.closing) throw new Error(`the backend is closed: cannot open its ${name}`);
    let port = this.opened.get(name) as T | undefined;
    if (!port) {
      port = open();
      this.opened.set(name, port);
      const p = port;
      this.add(() => p.close());
    }
    return port;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      let first: unknown;
      for (const close of this.stack.reverse()) {
        try {
          await close();
        } catch (err) {
          first ??= err;
        }
      }
      if (first) throw first;
    })();
    return this.closing;
  }
}
