// Tollgate plugin: a sticky A/B router, written in JavaScript.
//
// Each request is put in one variant by a hash of a sticky id: the value of a header (e.g. a
// user id), else a cookie, else the client's IP. The same id always lands in the same variant
// for the same `experiment` and weights. The chosen variant is set as a request header the
// upstream sees (`x-ab-variant` by default), as a context value later plugins read
// (`ab_variant`), and echoed on the response so a client can report it.
//
// Built into a WebAssembly component with componentize-js (see package.json); the contract is
// the repository's wit/v0.1/plugin.wit (contract 0.1.0), world `plugin`, exactly as for the Rust plugins.

import * as context from 'tollgate:plugin/context@0.1.0';

const KEYS = new Set([
  'experiment', 'variants', 'sticky_header', 'sticky_cookie',
  'request_header', 'response_header', 'context_key',
]);

let settings = null;

function requireString(raw, key, fallback) {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'string' || value.length === 0) {
    throw `\`${key}\` must be a non-empty string`;
  }
  return value;
}

function parse(config) {
  let raw;
  try {
    raw = JSON.parse(config || '{}');
  } catch (e) {
    throw `config is not JSON: ${e}`;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw 'the config must be a table';
  }
  const unknown = Object.keys(raw).filter((k) => !KEYS.has(k)).sort();
  if (unknown.length > 0) throw `unknown config key(s): ${unknown.join(', ')}`;
  if (!Array.isArray(raw.variants) || raw.variants.length < 2) {
    throw '`variants` is required: at least two { name, weight } tables';
  }
  const names = new Set();
  let total = 0;
  const variants = raw.variants.map((v, i) => {
    if (v === null || typeof v !== 'object') throw `variants[${i}] must be a table`;
    const extra = Object.keys(v).filter((k) => k !== 'name' && k !== 'weight');
    if (extra.length > 0) throw `variants[${i}]: unknown key(s): ${extra.join(', ')}`;
    if (typeof v.name !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(v.name)) {
      throw `variants[${i}].name must be 1-64 characters of A-Z a-z 0-9 . _ -`;
    }
    if (names.has(v.name)) throw `variants[${i}].name \`${v.name}\` is repeated`;
    names.add(v.name);
    if (!Number.isInteger(v.weight) || v.weight < 0 || v.weight > 10000) {
      throw `variants[${i}].weight must be an integer in 0..=10000`;
    }
    total += v.weight;
    return { name: v.name, weight: v.weight };
  });
  if (total === 0) throw 'the variants\' weights add up to 0';
  return {
    experiment: requireString(raw, 'experiment', 'default'),
    variants,
    total,
    stickyHeader: raw.sticky_header === undefined ? null : requireString(raw, 'sticky_header'),
    stickyCookie: raw.sticky_cookie === undefined ? null : requireString(raw, 'sticky_cookie'),
    requestHeader: requireString(raw, 'request_header', 'x-ab-variant'),
    responseHeader: raw.response_header === '' ? null
      : requireString(raw, 'response_header', 'x-ab-variant'),
    contextKey: requireString(raw, 'context_key', 'ab_variant'),
  };
}

// FNV-1a, 32 bits, over the UTF-8 bytes of `experiment:id`: tiny, stable across languages.
export function fnv1a(text) {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function choose(s, id) {
  let point = fnv1a(`${s.experiment}:${id}`) % s.total;
  for (const v of s.variants) {
    if (point < v.weight) return v.name;
    point -= v.weight;
  }
  return s.variants[s.variants.length - 1].name;
}

function cookie(req, name) {
  for (const header of req.headerAll('cookie')) {
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
    }
  }
  return undefined;
}

function stickyId(s, req) {
  if (s.stickyHeader) {
    const v = req.header(s.stickyHeader);
    if (v) return v;
  }
  if (s.stickyCookie) {
    const v = cookie(req, s.stickyCookie);
    if (v) return v;
  }
  return req.clientIp();
}

export function init(config) {
  settings = parse(config);
  return {
    phases: { request: true, response: settings.responseHeader !== null, log: false },
    requestBody: false,
    responseBody: false,
  };
}

export function onRequest(req) {
  const s = settings;
  const variant = choose(s, stickyId(s, req));
  req.setHeader(s.requestHeader, variant);
  context.set(s.contextKey, variant);
  return { tag: 'continue' };
}

export function onResponse(_req, resp) {
  const variant = context.get(settings.contextKey);
  if (variant !== undefined && settings.responseHeader !== null) {
    resp.setHeader(settings.responseHeader, variant);
  }
  return { tag: 'continue' };
}

export function onLog(_entry) {}
