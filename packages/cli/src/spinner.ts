/** A one-line progress spinner on stderr, shown only when stderr is a terminal. */
export interface Spinner {
  stop(): void;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function startSpinner(text: string, stream: NodeJS.WriteStream = process.stderr): Spinner {
  if (!stream.isTTY || process.env.CI) return { stop() {} };
  let i = 0;
  let active = true;
  const draw = (): void => {
    stream.write(`\r${FRAMES[i++ % FRAMES.length]} ${text}`);
  };
  draw();
  const timer = setInterval(draw, 80);
  timer.unref();
  return {
    stop() {
      if (!active) return;
      active = false;
      clearInterval(timer);
      stream.write('\r\x1b[2K');
    },
  };
}
