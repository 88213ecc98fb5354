import type { Lint } from './lint.js';

/** RFC 5280 §4.1.2.2: the serial is a positive integer of at most 20 octets. */
export const serialPositiveAndShort: Lint = {
  name: 'serial_positive_and_short',
  check: (d) => {
    if (d.serial.length === 0 || d.serial.length > 20) return `serial is ${d.serial.length} octets (1..20 allowed)`;
    if (d.serial[0]! & 0x80) return 'serial would encode as a negative integer';
    if (d.serial.length > 1 && d.serial[0] === 0 && !(d.serial[1]! & 0x80)) return 'serial is not minimally encoded';
    return null;
  },
};

/** CA/B Forum BR §7.1: at least 64 bits of CSPRNG output; we make 128, so fewer means a bug. */
export const serialHasEntropy: Lint = {
  name: 'serial_has_entropy',
  check: (d) => (d.serial.length < 8 ? 'serial is shorter than 64 bits' : null),
};
