import { describe, expect, it } from 'vitest';
import { createLogger, parseLogLevel, type LogLevel } from '../../shared/log.js';

function capture(level: LogLevel = 'info') {
  const lines: { line: string; level: LogLevel }[] = [];
  const logger = createLogger({ level, sink: (line, lv) => lines.push({ line, level: lv }) });
  return { logger, lines, parsed: () => lines.map((l) => JSON.parse(l.line) as Record<string, unknown>) };
}

describe('log', () => {
  it('writes one JSON object per call with ts, level, event and fields', () => {
    const { logger, lines, parsed } = capture();
    logger.info('table_loaded', { routes: 3, source: '/etc/t.yaml' });
    expect(lines).toHaveLength(1);
    expect(lines[0].line.includes('\n')).toBe(false);
    const [rec] = parsed();
    expect(rec.level).toBe('info');
    expect(rec.event).toBe('table_loaded');
    expect(rec.routes).toBe(3);
    expect(rec.source).toBe('/etc/t.yaml');
    expect(Number.isNaN(Date.parse(String(rec.ts)))).toBe(false);
    expect(Object.keys(rec).slice(0, 3)).toEqual(['ts', 'level', 'event']);
  });

  it('drops calls below the threshold without evaluating them, and follows setLevel in children', () => {
    const { logger, parsed } = capture('warn');
    const child = logger.child({ service: 'front' });
    logger.debug('d');
    logger.info('i');
    child.info('i2');
    logger.warn('w');
    child.error('e');
    expect(parsed().map((r) => r.event)).toEqual(['w', 'e']);
    expect(parsed()[1].service).toBe('front');
    expect(logger.enabled('info')).toBe(false);
    logger.setLevel('debug');
    child.debug('d2');
    expect(parsed().map((r) => r.event)).toEqual(['w', 'e', 'd2']);
    expect(child.level).toBe('debug');
  });

  it('routes levels to the sink with their level, serialises errors and bigint, survives cycles', () => {
    const { logger, lines, parsed } = capture('debug');
    const err = Object.assign(new Error('boom'), { code: 'EEXIST' });
    logger.error('failed', { err, big: 5n });
    const cyc: Record<string, unknown> = {};
    cyc.self = cyc;
    logger.warn('cyclic', { cyc });
    expect(lines.map((l) => l.level)).toEqual(['error', 'warn']);
    const [a, b] = parsed();
    expect((a.err as Record<string, unknown>).message).toBe('boom');
    expect((a.err as Record<string, unknown>).code).toBe('EEXIST');
    expect(a.big).toBe('5');
    expect(b.event).toBe('cyclic');
    expect(typeof b.logError).toBe('string');
  });

  it('fields cannot overwrite ts/level/event', () => {
    const { logger, parsed } = capture();
    logger.info('real', { event: 'fake', level: 'error' });
    expect(parsed()[0]).toMatchObject({ event: 'real', level: 'info' });
  });

  it('parses level names', () => {
    expect(parseLogLevel('DEBUG')).toBe('debug');
    expect(parseLogLevel('nope')).toBe('info');
    expect(parseLogLevel(undefined, 'warn')).toBe('warn');
  });
});
