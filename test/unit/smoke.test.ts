import { describe, it, expect } from 'vitest';
import { MSLB_VERSION } from '../../shared/version.js';
describe('smoke', () => { it('version', () => { expect(MSLB_VERSION).toMatch(/\d+\.\d+\.\d+/); }); });
