import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMetrics } from './metrics.js';

const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('createMetrics', () => {
  it('folds OCSP counts into the counter at each scrape without counting twice', async () => {
    const m = createMetrics({ now: () => new Date(), processMetrics: false });
    for (let i = 0; i < 5; i++) m.authority.ocspAnswered('good', true);
    m.authority.ocspAnswered('good', false);
    m.authority.ocspAnswered('malformedRequest', false);
    const first = await m.registry.metrics();
    assert.equal(sample(first, 'shortleaf_ocsp_responses_total{status="good",cache="hit"}'), 5);
    assert.equal(sample(first, 'shortleaf_ocsp_responses_total{status="good",cache="miss"}'), 1);
    assert.equal(sample(first, 'shortleaf_ocsp_responses_total{status="malformedRequest",cache="miss"}'), 1);
    assert.equal(
      sample(first, 'shortleaf_ocsp_responses_total{status="revoked",cache="hit"}'),
      0,
      'every series exists from the start',
    );
    m.authority.ocspAnswered('good', true);
    const second = await m.registry.metrics();
    assert.equal(sample(second, 'shortleaf_ocsp_responses_total{status="good",cache="hit"}'), 6);
    assert.equal(sample(second, 'shortleaf_ocsp_responses_total{status="good",cache="miss"}'), 1);
  });

  it('computes CRL age and time to nextUpdate when scraped, from the published CRL', async () => {
    let now = new Date('2030-01-01T00:00:00Z');
    const m = createMetrics({ now: () => now, processMetrics: false });
    m.authority.crlPublished({
      number: 7n,
      entries: 3,
      bytes: 512,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 86_400_000),
    });
    now = new Date(now.getTime() + 90_000);
    const text = await m.registry.metrics();
    assert.equal(sample(text, 'shortleaf_crl_age_seconds'), 90);
    assert.equal(sample(text, 'shortleaf_crl_next_update_seconds'), 86_400 - 90);
    assert.equal(sample(text, 'shortleaf_crl_entries'), 3);
    assert.equal(sample(text, 'shortleaf_crl_bytes'), 512);
    assert.equal(sample(text, 'shortleaf_crl_number'), 7);
    assert.equal(sample(text, 'shortleaf_crl_published_total'), 1);
  });

  it('keeps registries apart: two instances never share counts', async () => {
    const a = createMetrics({ now: () => new Date(), processMetrics: false });
    const b = createMetrics({ now: () => new Date(), processMetrics: false });
    a.authority.revoked('keyCompromise');
    a.authority.issued({ provisioner: 'p', frontDoor: 'rest', action: 'renew', ms: 12 });
    a.acme.orderState('valid');
    a.acme.validationFailed('dns-01', 'dns');
    const ta = await a.registry.metrics();
    const tb = await b.registry.metrics();
    assert.equal(sample(ta, 'shortleaf_revocations_total{reason="keyCompromise"}'), 1);
    assert.equal(sample(tb, 'shortleaf_revocations_total{reason="keyCompromise"}'), 0);
    assert.equal(
      sample(ta, 'shortleaf_certificates_issued_total{provisioner="p",front_door="rest",action="renew"}'),
      1,
    );
    assert.equal(sample(ta, 'shortleaf_issuance_duration_seconds_bucket{le="0.025",front_door="rest"}'), 1);
    assert.equal(sample(ta, 'shortleaf_issuance_duration_seconds_bucket{le="0.01",front_door="rest"}'), 0);
    assert.equal(sample(ta, 'shortleaf_acme_orders_total{state="valid"}'), 1);
    assert.equal(sample(ta, 'shortleaf_acme_validation_failures_total{challenge="dns-01",problem="dns"}'), 1);
    assert.equal(a.registry.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  });
});
