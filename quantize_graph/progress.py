"""A small progress bar on stderr, for the long loops (calibration, evaluation).

    bar = ProgressBar(len(files), "calibrating")
    for batch in batches:
        ...
        bar.update(len(batch))     # adds to the count, like tqdm
    bar.close()

On a terminal the line is redrawn in place with '\\r':

    calibrating  37/100 [=======>            ] 12.3 img/s, 5 s left

When stderr is not a terminal (CI logs, pipes) the same text is written as plain lines, at most
one every `interval` seconds (2 by default), plus a last line on close().
"""
import sys
import time


class ProgressBar:
    """Progress of `total` items; `update(n)` adds n done items (fractions allowed, e.g. one
    item over two passes); `close()` ends the line.

    Also a context manager. `stream` defaults to sys.stderr at construction time; `tty` overrides
    the stream's own isatty(); `interval` is the minimum seconds between plain lines (non-TTY).
    """

    TTY_INTERVAL = 0.1  # redraws on a terminal are cheap, but not free

    def __init__(self, total, label="", unit="img", width=20, stream=None, tty=None,
                 interval=2.0):
        self.total = max(0, int(total))
        self.label = label
        self.unit = unit
        self.width = max(1, int(width))
        self.stream = sys.stderr if stream is None else stream
        self.tty = _isatty(self.stream) if tty is None else bool(tty)
        self.interval = self.TTY_INTERVAL if self.tty else max(0.0, float(interval))
        self.count = 0
        self.start = time.monotonic()
        self._last_draw = self.start
        self._last_len = 0
        self._drawn_count = None
        self.closed = False
        if self.tty:
            self._draw(self.start)  # something to look at before the first item is done

    def update(self, n=1):
        """Adds `n` finished items and redraws if enough time has passed since the last draw."""
        if self.closed:
            return
        self.count += n
        now = time.monotonic()
        if now - self._last_draw >= self.interval:
            self._draw(now)

    def close(self):
        """Draws the final state (rate and total time) and ends the line; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self.tty or self._drawn_count != self.count:
            self._draw(time.monotonic(), final=True)
        if self.tty and self._last_len:
            self.stream.write("\n")
            self._flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def text(self, now=None, final=False):
        """The progress line without the '\\r' or newline."""
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.start, 0.0)
        digits = len(str(self.total))
        count = int(round(self.count))
        parts = ["%s %*d/%d" % (self.label, digits, count, self.total) if self.label
                 else "%*d/%d" % (digits, count, self.total), self._bar()]
        rate = self.count / elapsed if elapsed > 0 and self.count else None
        speed = "%.1f %s/s" % (rate, self.unit) if rate else "-- %s/s" % self.unit
        if final:
            parts.append("%s, done in %s" % (speed, _duration(elapsed)))
        elif rate and not self._complete():
            parts.append("%s, %s left" % (speed, _duration((self.total - self.count) / rate)))
        else:
            parts.append(speed)
        return " ".join(parts)

    def _complete(self):
        return self.count >= self.total - 1e-6  # fractional updates may fall a hair short

    def _bar(self):
        done = min(self.count, self.total) / self.total if self.total else 1.0
        filled = self.width if self._complete() else int(done * self.width)
        if filled >= self.width:
            return "[%s]" % ("=" * self.width)
        return "[%s>%s]" % ("=" * filled, " " * (self.width - filled - 1))

    def _draw(self, now, final=False):
        line = self.text(now, final)
        if self.tty:
            pad = " " * max(0, self._last_len - len(line))  # wipe a longer previous line
            self.stream.write("\r" + line + pad)
        else:
            self.stream.write(line + "\n")
        self._last_len = len(line)
        self._last_draw = now
        self._drawn_count = self.count
        self._flush()

    def _flush(self):
        try:
            self.stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def _duration(seconds):
    """'5 s', '2 min 5 s', '1 h 3 min'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return "%d s" % seconds
    if seconds < 3600:
        return "%d min %d s" % divmod(seconds, 60)
    return "%d h %d min" % (seconds // 3600, seconds % 3600 // 60)
