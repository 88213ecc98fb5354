import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PkiError } from './errors.js';
import { embeddedIpv4, formatIp, ipInNetwork, parseCidr, parseIp, specialAddress } from './ip.js';

const hex = (b: Uint8Array | null): string | null => (b === null ? null : Buffer.from(b).toString('hex'));

/** Node's WHATWG URL parser serialises IPv6 hosts per RFC 5952: an independent oracle. */
const whatwg = (text: string): string => new URL(`http://[${text}]/`).hostname.slice(1, -1);

describe('parseIp', () => {
  it('parses IPv4 to four bytes', () => {
    assert.deepEqual(parseIp('10.0.0.1'), Uint8Array.of(10, 0, 0, 1));
    assert.deepEqual(parseIp('0.0.0.0'), Uint8Array.of(0, 0, 0, 0));
    assert.deepEqual(parseIp('255.255.255.255'), Uint8Array.of(255, 255, 255, 255));
  });

  it('parses IPv6, with and without ::, to sixteen bytes', () => {
    assert.equal(hex(parseIp('::')), '0'.repeat(32));
    assert.equal(hex(parseIp('::1')), `${'0'.repeat(30)}01`);
    assert.equal(hex(parseIp('2001:db8::1')), '20010db8000000000000000000000001');
    assert.equal(hex(parseIp('2001:DB8:0:0:0:0:0:1')), '20010db8000000000000000000000001');
    assert.equal(hex(parseIp('fe80::')), `fe80${'0'.repeat(28)}`);
    assert.equal(hex(parseIp('1:2:3:4:5:6:7::')), '00010002000300040005000600070000');
  });

  it('parses an IPv4 tail in IPv6 (RFC 4291 §2.2 form 3)', () => {
    assert.equal(hex(parseIp('::ffff:1.2.3.4')), '00000000000000000000ffff01020304');
    assert.equal(hex(parseIp('64:ff9b::192.0.2.33')), '0064ff9b0000000000000000c0000221');
  });

  for (const bad of [
    '1.2.3',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.4.5',
    '1::2::3',
    ':::',
    '',
    'localhost',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    ':1::2',
    '12345::',
    'g::1',
    '::ffff:1.2.3',
    '::ffff:256.2.3.4',
    'fe80::1%eth0',
    '10.0.0.1/8',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.equal(parseIp(bad), null);
    });
  }
});

describe('formatIp', () => {
  it('formats IPv4 dotted-decimal', () => {
    assert.equal(formatIp(Uint8Array.of(192, 168, 0, 10)), '192.168.0.10');
  });

  // RFC 5952 §4: lower case, no leading zeros, the longest run of ≥ 2 zero groups compressed, the
  // first such run on a tie, and a single zero group never compressed.
  for (const [input, canonical] of [
    ['::', '::'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8::0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['ABCD:0:0:0:0:0:0:0', 'abcd::'],
    ['fe80::1:2', 'fe80::1:2'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
  ] as const) {
    it(`formats ${input} as ${canonical}`, () => {
      const formatted = formatIp(parseIp(input)!);
      assert.equal(formatted, canonical);
      assert.equal(formatted, whatwg(input));
      assert.equal(hex(parseIp(formatted)), hex(parseIp(input)));
    });
  }

  it('refuses byte strings that are not 4 or 16 long', () => {
    assert.throws(
      () => formatIp(new Uint8Array(5)),
      (err: unknown) => {
        assert.ok(err instanceof PkiError);
        assert.equal(err.code, 'badName');
        assert.match(err.message, /4 or 16 bytes/);
        return true;
      },
    );
  });
});

describe('parseCidr', () => {
  it('parses networks and treats a bare address as a single host', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { network: Uint8Array.of(10, 0, 0, 0), prefix: 8 });
    assert.deepEqual(parseCidr('0.0.0.0/0'), { network: Uint8Array.of(0, 0, 0, 0), prefix: 0 });
    assert.deepEqual(parseCidr('10.1.2.3'), { network: Uint8Array.of(10, 1, 2, 3), prefix: 32 });
    assert.equal(parseCidr('2001:db8::/32')?.prefix, 32);
    assert.equal(parseCidr('::/0')?.prefix, 0);
    assert.equal(parseCidr('2001:db8::1')?.prefix, 128);
    assert.equal(parseCidr('2001:db8::1/128')?.prefix, 128);
  });

  for (const bad of [
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/8/1',
    'x/8',
    '10.0.0.0/-1',
    '10.0.0.0/',
    '10.0.0.0/8.5',
    '/8',
    '',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.equal(parseCidr(bad), null);
    });
  }
});

describe('ipInNetwork', () => {
  const inNet = (ip: string, cidr: string): boolean => ipInNetwork(parseIp(ip)!, parseCidr(cidr)!);

  it('/0 holds every address of its own family only', () => {
    assert.ok(inNet('203.0.113.9', '0.0.0.0/0'));
    assert.ok(inNet('2001:db8::1', '::/0'));
    assert.ok(!inNet('2001:db8::1', '0.0.0.0/0'));
    assert.ok(!inNet('203.0.113.9', '::/0'));
  });

  it('/8 holds its first octet', () => {
    assert.ok(inNet('10.255.255.255', '10.0.0.0/8'));
    assert.ok(inNet('10.0.0.0', '10.0.0.0/8'));
    assert.ok(!inNet('11.0.0.0', '10.0.0.0/8'));
    assert.ok(!inNet('9.255.255.255', '10.0.0.0/8'));
  });

  it('a prefix inside an octet masks the right bits', () => {
    assert.ok(inNet('172.31.255.255', '172.16.0.0/12'));
    assert.ok(!inNet('172.32.0.0', '172.16.0.0/12'));
    assert.ok(inNet('2001:db8:ffff::1', '2001:db8::/32'));
    assert.ok(!inNet('2001:db9::1', '2001:db8::/32'));
  });

  it('/32 and /128 hold exactly one address', () => {
    assert.ok(inNet('10.1.2.3', '10.1.2.3/32'));
    assert.ok(!inNet('10.1.2.4', '10.1.2.3/32'));
    assert.ok(inNet('2001:db8::1', '2001:db8::1/128'));
    assert.ok(!inNet('2001:db8::2', '2001:db8::1/128'));
  });

  it('never mixes families, even for IPv4-mapped IPv6', () => {
    assert.ok(!inNet('::ffff:10.0.0.1', '10.0.0.0/8'));
    assert.ok(!inNet('10.0.0.1', '::ffff:10.0.0.0/104'));
  });
});

describe('embeddedIpv4', () => {
  const embedded = (text: string) => {
    const v4 = embeddedIpv4(parseIp(text)!);
    return v4 === null ? null : formatIp(v4);
  };

  it('reads the IPv4 address of the mapped, compatible and NAT64 forms', () => {
    assert.equal(embedded('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(embedded('::ffff:0.0.0.0'), '0.0.0.0');
    assert.equal(embedded('::10.0.0.1'), '10.0.0.1');
    assert.equal(embedded('64:ff9b::169.254.169.254'), '169.254.169.254');
  });

  it('leaves ::, ::1, IPv4 and ordinary IPv6 alone', () => {
    for (const text of ['::', '::1', '10.0.0.1', '2001:db8::1', 'fe80::1', '64:ff9b:1::1'])
      assert.equal(embedded(text), null, text);
  });
});

describe('specialAddress', () => {
  const kind = (text: string) => specialAddress(parseIp(text)!)?.kind ?? null;

  // Each of these reaches the local machine, many hosts, or the cloud metadata service: never
  // one remote host (RFC 6890). 0.0.0.0 and :: are dialled as loopback by Linux.
  for (const [text, expected] of [
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::0.0.0.2', 'unspecified'],
    ['64:ff9b::0.0.0.0', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['ff0e::1', 'multicast'],
    ['::ffff:224.0.0.1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::ffff:255.255.255.255', 'broadcast'],
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['::ffff:169.254.169.254', 'link-local'],
    ['::169.254.169.254', 'link-local'],
    ['64:ff9b::a9fe:a9fe', 'link-local'],
  ] as const) {
    it(`classes ${text} as ${expected}`, () => {
      assert.equal(kind(text), expected);
    });
  }

  for (const text of [
    '127.0.0.1',
    '::1',
    '::ffff:127.0.0.1',
    '10.0.0.1',
    '1.0.0.0',
    '223.255.255.255',
    '255.255.255.254',
    '169.253.255.255',
    '169.255.0.0',
    'fec0::1',
    'fd00::1',
    'fe7f::1',
    '2001:db8::1',
  ]) {
    it(`leaves ${text} to the configured policy`, () => {
      assert.equal(kind(text), null);
    });
  }
});
