import { describe, expect, it } from 'vitest';
import {
  carriesRegionalPremium,
  defaultHost,
  parseVertexPath,
  regional,
  toCanonical,
  toVertex,
  VertexPathError,
  vertexPath,
} from '../../adapters/vertex/models.ts';

describe('Vertex model ids', () => {
  it.each([
    ['claude-haiku-4-5@20251001', 'claude-haiku-4-5-20251001'],
    ['claude-sonnet-4-5@20250929', 'claude-sonnet-4-5-20250929'],
    ['claude-opus-4-1@20250805', 'claude-opus-4-1-20250805'],
    ['claude-opus-5-5', 'claude-opus-5-5'],
    ['claude-haiku-5-5', 'claude-haiku-5-5'],
  ])('reads %s as the canonical %s', (vertex, canonical) => {
    expect(toCanonical(vertex)).toBe(canonical);
  });

  it.each([
    ['claude-haiku-4-5-20251001', 'claude-haiku-4-5@20251001'],
    ['claude-haiku-4-5', 'claude-haiku-4-5@20251001'],
    ['claude-sonnet-4-5', 'claude-sonnet-4-5@20250929'],
    ['claude-opus-4-5', 'claude-opus-4-5@20251101'],
    ['claude-opus-4-0', 'claude-opus-4@20250514'],
    ['claude-opus-5-5', 'claude-opus-5-5'],
    ['claude-fable-5-2', 'claude-fable-5-2'],
  ])('names the canonical %s %s on Vertex', (canonical, vertex) => {
    expect(toVertex(canonical)).toBe(vertex);
  });

  it('lets the models option override the table', () => {
    expect(toVertex('claude-opus-5-5', { 'claude-opus-5-5': 'claude-opus-5-5@20261101' })).toBe(
      'claude-opus-5-5@20261101',
    );
  });
});

describe('the Vertex request path', () => {
  it('parses a full path, with or without /v1 and a prefix', () => {
    const want = {
      project: 'p-1',
      location: 'us-east5',
      model: 'claude-opus-5-5',
      method: 'streamRawPredict',
    };
    for (const prefix of ['', '/', '/v1/', '/vertex/', '/vertex/v1/']) {
      expect(
        parseVertexPath(
          `${prefix}projects/p-1/locations/us-east5/publishers/anthropic/models/claude-opus-5-5:streamRawPredict`,
        ),
      ).toEqual(want);
    }
  });

  it('parses a dated model id, the count-tokens model and an escaped colon', () => {
    expect(
      parseVertexPath(
        'projects/p/locations/global/publishers/anthropic/models/claude-haiku-4-5@20251001:rawPredict',
      ),
    ).toMatchObject({ model: 'claude-haiku-4-5@20251001', method: 'rawPredict' });
    expect(
      parseVertexPath(
        'projects/p/locations/global/publishers/anthropic/models/count-tokens%3ArawPredict?x=1',
      ),
    ).toMatchObject({ model: 'count-tokens', method: 'rawPredict' });
  });

  it.each([
    ['v1/models/claude', 'projects'],
    ['projects/p/locations/global/publishers/anthropic/models', 'path'],
    ['projects/p/regions/global/publishers/anthropic/models/m:rawPredict', 'locations'],
    ['projects/p/locations/global/publishers/google/models/m:rawPredict', 'publisher'],
    ['projects/p/locations/global/publishers/anthropic/endpoints/m:rawPredict', 'models'],
    ['projects/p/locations/global/publishers/anthropic/models/claude-opus-5-5', 'method'],
    ['projects/p/locations/global/publishers/anthropic/models/claude-opus-5-5:predict', 'method'],
    ['projects/p/locations/global/publishers/anthropic/models/:rawPredict', 'model'],
    ['projects//locations/global/publishers/anthropic/models/m:rawPredict', 'project'],
    ['projects/p/locations/glo bal/publishers/anthropic/models/m:rawPredict', 'location'],
  ])('refuses %s naming %s', (path, part) => {
    let err: unknown;
    try {
      parseVertexPath(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VertexPathError);
    expect((err as VertexPathError).part).toBe(part);
    expect((err as Error).message.startsWith(`${part}: `)).toBe(true);
  });

  it('builds the path it parses', () => {
    const p = {
      project: 'p',
      location: 'global',
      model: 'claude-haiku-4-5@20251001',
      method: 'rawPredict' as const,
    };
    expect(parseVertexPath(vertexPath(p))).toEqual(p);
  });
});

describe('locations and their price', () => {
  it('is regional everywhere but global, multi-region endpoints included', () => {
    expect(regional('global')).toBe(false);
    for (const l of ['us-east5', 'europe-west1', 'asia-southeast1', 'us', 'eu'])
      expect(regional(l)).toBe(true);
  });

  it('charges the regional premium from the 4.5 generation on, not before', () => {
    for (const m of [
      'claude-sonnet-4-5',
      'claude-haiku-4-5@20251001',
      'claude-opus-4-5',
      'claude-opus-5-5',
      'claude-haiku-5-5',
    ])
      expect(carriesRegionalPremium(m)).toBe(true);
    for (const m of [
      'claude-opus-4-1',
      'claude-opus-4@20250514',
      'claude-sonnet-4-20250514',
      'claude-3-5-haiku@20241022',
    ])
      expect(carriesRegionalPremium(m)).toBe(false);
  });

  it('knows each location’s host', () => {
    expect(defaultHost('global')).toBe('https://aiplatform.googleapis.com');
    expect(defaultHost('us-east5')).toBe('https://us-east5-aiplatform.googleapis.com');
    expect(defaultHost('eu')).toBe('https://aiplatform.eu.rep.googleapis.com');
  });
});
