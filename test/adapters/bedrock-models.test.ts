import { describe, expect, it } from 'vitest';
import {
  billedRegional,
  ModelIdError,
  modelIdFor,
  parseModelId,
  regional,
  regionalPremium,
} from '../../adapters/bedrock/models.ts';

describe('Bedrock model ids → canonical model and geography', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['us.anthropic.claude-opus-5-5', 'claude-opus-5-5', 'us'],
    ['global.anthropic.claude-sonnet-5-5', 'claude-sonnet-5-5', 'global'],
    ['anthropic.claude-haiku-4-5-20251001-v1:0', 'claude-haiku-4-5-20251001', undefined],
    ['eu.anthropic.claude-sonnet-4-5-20250929-v1:0', 'claude-sonnet-4-5-20250929', 'eu'],
    ['apac.anthropic.claude-sonnet-4-20250514-v1:0', 'claude-sonnet-4-20250514', 'apac'],
    ['jp.anthropic.claude-opus-5-5', 'claude-opus-5-5', 'jp'],
    ['au.anthropic.claude-opus-4-6-v1', 'claude-opus-4-6', 'au'],
    ['us-gov.anthropic.claude-3-5-haiku-20241022-v1:0', 'claude-3-5-haiku-20241022', 'us-gov'],
    ['us.anthropic.claude-haiku-4-5-20251001-v1%3A0', 'claude-haiku-4-5-20251001', 'us'],
    [
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-5-5',
      'claude-opus-5-5',
      'us',
    ],
    ['arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-fable-5-2', 'claude-fable-5-2', undefined],
  ];
  it.each(cases)('%s → %s on %s', (id, model, geo) => {
    expect(parseModelId(id)).toEqual({ model, geo });
  });

  it.each([
    'meta.llama3-70b-instruct-v1:0',
    'mars.anthropic.claude-opus-5-5',
    'claude-opus-5-5',
    'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123',
    '',
  ])('refuses %j with an error naming the id', (id) => {
    expect(() => parseModelId(id)).toThrow(ModelIdError);
    expect(() => parseModelId(id)).toThrow(`Bedrock model id ${JSON.stringify(id)}`);
  });
});

describe('canonical model and geography → Bedrock model id', () => {
  const cases: Array<[string, string | undefined, string]> = [
    ['claude-opus-5-5', 'us', 'us.anthropic.claude-opus-5-5'],
    ['claude-opus-5-5', undefined, 'anthropic.claude-opus-5-5'],
    ['claude-haiku-4-5', 'global', 'global.anthropic.claude-haiku-4-5-20251001-v1:0'],
    ['claude-haiku-4-5-20251001', 'eu', 'eu.anthropic.claude-haiku-4-5-20251001-v1:0'],
    ['claude-opus-4-6', 'us', 'us.anthropic.claude-opus-4-6-v1'],
    ['claude-sonnet-4-6', 'apac', 'apac.anthropic.claude-sonnet-4-6'],
  ];
  it.each(cases)('%s on %s → %s, and back', (model, geo, id) => {
    expect(modelIdFor(model, geo)).toBe(id);
    expect(parseModelId(id).geo).toBe(geo);
  });

  it('a configured override wins, used as given', () => {
    expect(modelIdFor('claude-opus-5-5', 'us', { 'claude-opus-5-5': 'arn:aws:bedrock:x' })).toBe(
      'arn:aws:bedrock:x',
    );
  });

  it('refuses an unknown geography and a non-Claude model', () => {
    expect(() => modelIdFor('claude-opus-5-5', 'mars')).toThrow('unknown geography "mars"');
    expect(() => modelIdFor('gpt-9', 'us')).toThrow('Bedrock model id "gpt-9"');
  });
});

describe('regional pricing', () => {
  it('every profile but global is regional', () => {
    expect(regional('global')).toBe(false);
    for (const g of ['us', 'eu', 'apac', 'jp', 'au', undefined]) expect(regional(g)).toBe(true);
  });

  it('the 10% regional premium applies from the 4.5 generation on', () => {
    for (const m of [
      'claude-sonnet-4-5-20250929',
      'claude-haiku-4-5',
      'claude-opus-4-6',
      'claude-opus-5-5',
      'claude-fable-5-2',
    ])
      expect(regionalPremium(m)).toBe(true);
    for (const m of [
      'claude-opus-4-1-20250805',
      'claude-sonnet-4-20250514',
      'claude-opus-4-20250514',
      'claude-3-5-haiku-20241022',
    ])
      expect(regionalPremium(m)).toBe(false);
    expect(billedRegional('claude-opus-5-5', 'us')).toBe(true);
    expect(billedRegional('claude-opus-5-5', 'global')).toBe(false);
    expect(billedRegional('claude-sonnet-4-20250514', 'us')).toBe(false);
  });
});
