/**
 * Structured JSON logs: one object per line, `level`, `time`, `component`, `msg`, then fields.
 * The sink is injectable so tests can read what a component logged.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;
export type LogSink = (line: string) => void;

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  sink?: LogSink;
  now?: () => Date;
}

const stderrSink: LogSink = (line) => {
  process.stderr.write(line + '\n');
};

export function createLogger(base: LogFields, options: LoggerOptions = {}): Logger {
  const min = rank[options.level ?? parseLevel(process.env.WEBGW_LOG_LEVEL)];
  const sink = options.sink ?? stderrSink;
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (rank[level] < min) return;
    sink(JSON.stringify({ level, time: now().toISOString(), ...base, msg, ...fields }, errorReplacer));
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...base, ...fields }, options),
  };
}

/** A logger that drops everything, for library users and tests that do not care. */
export const silentLogger: Logger = createLogger({}, { sink: () => {} });

function parseLevel(value: string | undefined): LogLevel {
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { message: value.message, ...(code !== undefined ? { code } : {}) };
  }
  return value;
}
