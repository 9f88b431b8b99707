// The tokenizer test corpus: a deterministic, varied list of texts.
//
// Used by generate.mjs (vectors for the native suite, ids from the `tiktoken`
// npm package) and by tests/wasm/tokenizer.test.mjs (the same texts against
// the wasm build). Every text is valid Unicode (no lone surrogates), so its
// UTF-8 form is exactly what tiktoken encodes.
//
// Four groups:
//   * edge: hand-picked cases for each rule of the two patterns;
//   * windows: random slices of multilingual sample passages (prose, code,
//     JSON, CJK, Arabic, Devanagari, Thai, Cyrillic, emoji ...);
//   * fuzz: random strings from a palette chosen to hit class boundaries
//     (every White_Space character, marks, modifier letters, title case,
//     numbers of other scripts, contractions in both cases, U+0085, U+FEFF,
//     U+180E, lone \r, CRLF, special-token strings ...);
//   * long: long pieces (up to 6 KB) that take the linear encoder.

// mulberry32: a small seeded PRNG, so the corpus is the same everywhere.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const passages = [
  // English prose
  `It's a truth universally acknowledged that a meter which can't count isn't worth much. We'll see: the clerk's ledger said 1,234,567 tokens; they'd charged $12.50 for 3.5M of them (about 0.0004% off). "Don't panic," she'd said -- and I'M SURE SHE MEANT IT'S FINE.`,
  `The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG! Pack my box with five dozen liquor jugs? Sphinx of black quartz, judge my vow... McDonald's iPhone eBay O'Neill LaTeX GPUs NASA's HTTPServer XMLHttpRequest.`,
  // Code
  `#include <vector>\nint main(int argc, char** argv) {\n    std::vector<int> v{1, 2, 3};\n    for (auto& x : v) { x *= 2; }  // double\n    return v.size() > 2 ? 0 : 1;\n}\n`,
  `def tokenize(text: str) -> list[int]:\n\t"""Split and encode."""\n\tif not text:\n\t\treturn []\n\treturn [ord(c) % 256 for c in text]  # TODO(alice): real BPE\r\n\r\nprint(tokenize("héllo wörld"))\n`,
  `const fetchUsage = async (userId) => {\n  const res = await fetch(\`/v1/users/\${userId}/usage\`, { headers: { Authorization: 'Bearer ' + token } });\n  if (!res.ok) throw new Error(res.statusText);\n  return res.json();\n};\n`,
  // JSON
  `{"user_id":"u_123","operation":"chat","model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Count: 1, 22, 333, 4444, 55555."}],"max_output_tokens":256,"ratio":0.75,"tags":["a","b"],"nested":{"ok":true,"nil":null}}`,
  // Whitespace and line endings
  `line one\r\nline two\r\n\r\n    indented\tand\ttabbed\n\n\n   trailing spaces   \n\u00a0non-breaking\u2003em space\u3000ideographic\u2028line sep\u2029para sep\u0085next line\u000b\u000c end   `,
  // CJK
  `東京都は日本の首都です。人口は約1400万人で、世界最大級の都市圏を形成しています。カタカナ：コンピューター、ひらがな：ありがとうございます！中文：我们今天去图书馆看书吧。한국어: 안녕하세요, 반갑습니다.`,
  // Arabic, Hebrew
  `مرحبا بالعالم! هذه جملة عربية مع أرقام ١٢٣٤٥ وتشكيل: كَتَبَ الطَّالِبُ الدَّرْسَ. שלום עולם, זהו משפט בעברית עם ניקוד: בְּרֵאשִׁית.`,
  // Devanagari, Thai
  `नमस्ते दुनिया! यह हिंदी का एक वाक्य है, जिसमें संख्याएँ १२३ और ४५६ हैं। क्षत्रिय ज्ञान श्री। ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรคระหว่างคำ สวัสดีครับ ๑๒๓ ขอบคุณมากค่ะ`,
  // Cyrillic, Greek, Latin with diacritics
  `Съешь же ещё этих мягких французских булок, да выпей чаю. ΞΕΣΚΕΠΑΖΩ ΤΗΝ ΨΥΧΟΦΘΟΡΑ ΒΔΕΛΥΓΜΊΑ. Ἀρχὴ ἥμισυ παντός. Żółć gęślą jaźń; Ærøskøbing; Ĳsselmeer; ǅemal ǈubljana ǋenan.`,
  // Emoji and symbols
  `Family: 👨‍👩‍👧‍👦 Flags: 🇺🇸🇯🇵🇩🇪 Skin: 👋🏽👍🏿 Hearts: ❤️🧡💛 Keycap: 1️⃣ #️⃣ Math: ∀x∈ℝ: x²≥0, ∑ᵢ aᵢ = ½·π ≈ 1.5708; © ® ™ € £ ¥ → ⇒ ∞ ≠ ≤`,
  // Modifier letters, combining marks, special cases
  `Modifier letters: ʰʲʷˠˤ ᵃᵇᶜ ꜀ ー々〻 ˈstress ˌsecondary. Combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323 Z\u0335\u0336\u0337. Enclosing: 1\u20dd A\u20de. <|endoftext|> <|endofprompt|> <|fim_prefix|>x<|fim_suffix|> \ufeffBOM \u180eMVS \u200bZWSP`,
];

const edgeCases = [
  '', ' ', '  ', '\n', '\r', '\r\n', '\n\n', '\t', 'a', 'A', '1', "'", '.', '/',
  "it's", "IT'S", "It'S", "they'll", "THEY'LL", "we're", "WE'RE", "I've", "I'VE", "she'd", "SHE'D", "I'm", "I'M",
  "don't", "DON'T", "'s", "'S", "'t", "'re", "'Re", "'rE", "'ve", "'m", "'ll", "'lL", "'d", "'x", "''s", "'", "x'",
  "it\u2019s", "it\u017fs", "it'\u017f", "IT'\u017f", "'\u017f", "\u017f", "K'\u212a", "'\u212a",
  'hello world', 'Hello World', 'HELLO WORLD', 'hELLO wORLD', 'HeLLo', 'HTTPServer', 'iPhone', 'McDonald',
  'ǅemal', 'ǅ', 'ǈ', 'Aǅb', 'ʰello', 'Aʰ', 'aʰB', 'ー', 'カー', 'ーカ', 'e\u0301', '\u0301', '\u0301a', 'A\u0301B', 'a\u0301\u0301',
  'x \u0301', '!\u0301', ' \u0301', '\u0301!', '\u0301 ', '1\u0301', 'ª', 'ºA', 'Ⅻ', 'ⅫⅫⅫⅫ',
  '1', '12', '123', '1234', '12345', '1234567890', '١٢٣٤٥', '१२३४', '½¼¾', '²³', '①②③④', 'a1b2', ' 1', '  123',
  '   ', '    x', '   \n', '\n   ', ' \n ', '\n \n', '\r\n\r\n', '\r\r\n\n', ' \r', '\r ', 'a\rb', 'a\r\nb', 'a\n\rb',
  'x  ', 'x   y', 'x\t\ty', '\t\tx', ' \tx', '\t x', 'x\n\ny', 'x \n y', 'x\u00a0y', 'x\u00a0\u00a0y', '\u00a0x',
  '\u0085', 'a\u0085b', 'a \u0085b x!\u0085 y.\u0085\u0085z', ' \u0085', '\u0085\u0085', 'x\u0085',
  '\ufeff', '\ufeffhello', 'word \ufeffnext \ufeff\ufeff', '\ufeff\ufeff', ' \ufeff',
  '\u180e', 'a\u180eb', ' \u180e', '\u180e\u180e', '\u200b', 'a\u200bb',
  '\u2028', '\u2029', 'a\u2028b', '\u3000', '\u3000x', 'x\u3000', '\u1680x', '\u2000\u200a', '\u202fx', '\u205f',
  '\u000b\u000c', 'x\u000by', '\u001c\u001d\u001e\u001f',
  '!!!', '!!!\n', ' !!!', ' !!!\n\n', '...\r\n', '?!/', '//', '/\n/', 'a/b', '!/\n', '!\n/', ' /x', '<|endoftext|>',
  '<|endofprompt|>', '<|fim_prefix|><|fim_middle|><|fim_suffix|>', 'hello<|endoftext|>world',
  '$', '$$', '€100', '#!/bin/sh', 'https://example.com/a/b?c=d&e=f#g', 'user@example.com', 'C:\\Users\\x',
  '😀', '😀😀', ' 😀', '👨‍👩‍👧', '👍🏽', '🇺🇸', '❤️', '1️⃣', 'a😀b', '😀a',
  '中文', '中文abc', 'abc中文', ' 中文', '日本語のテキスト', 'カタカナ', 'ひらがな', '한국어', 'ภาษาไทย', 'สวัสดี',
  'مرحبا', ' مرحبا', 'كَتَبَ', 'नमस्ते', 'क्षत्रिय', 'ᚠᚢᚦ', 'ꙮ', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', '𝐀𝐁𝐂', 'ℌℑ', 'Ω', 'ẞ', 'ß', 'ﬁ',
  '\u0000', 'a\u0000b', '\u007f', '\u0080', '\u009f', '\u00ad', 'soft\u00adhyphen',
  '\ud7ff', '\ue000', '\uf8ff', '\ufffd', '\uffff', '\u{10ffff}', '\u{1f600}\u{10fffd}', '\u{e0001}\u{e0041}',
];

// Characters assigned after Unicode 15.0 (Debian's unicode-data): tiktoken's
// tables may be older or newer, so these check that version drift does not
// change ids. They are kept out of the fuzz palette whose piece boundaries are
// compared with V8's newer tables.
export const postUnicode15 = ['\u{2ebf0}', '\u{31350}', '\u{1e5d0}', '\u{16d40}', '\u{1ccf0}', '\u{2fffc}', '\u{31ef}'];
const postUnicode15Cases = [
  'a\u{2ebf0}b', '\u{2ebf0}\u{2ebf0}', ' \u{2ebf0}x', 'A\u{1e5d0}b', '\u{1e5d0}', 'x\u{16d40}Y',
  '\u{1ccf0}\u{1ccf1}\u{1ccf2}\u{1ccf3}', 'a\u{1ccf0}', '\u{31ef}x', 'Q\u{2ffc}',
];

// The fuzz palette: atoms drawn at random.
const palette = [
  ...'abcdefghijklmnopqrstuvwxyz', ...'ABCDEFGHIJKLMNOPQRSTUVWXYZ', ...'0123456789', ...'!"#$%&()*+,-.:;<=>?@[\\]^_`{|}~',
  ' ', ' ', ' ', ' ', ' ', '\t', '\n', '\n', '\r', '\r\n', "'", "'", '/', '/',
  "'s", "'S", "'t", "'T", "'re", "'RE", "'rE", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'Ll", "'d", "'D", "'\u017f", '\u017f',
  '\u0085', '\u00a0', '\u1680', '\u2000', '\u2005', '\u200a', '\u2028', '\u2029', '\u202f', '\u205f', '\u3000', '\u000b', '\u000c',
  '\ufeff', '\u180e', '\u200b', '\u200d', '\u00ad', '\u2060',
  'É', 'é', 'Ø', 'ø', 'ß', 'ǅ', 'ǈ', 'ǋ', 'ʰ', 'ʲ', 'ˠ', 'ᵃ', 'ー', '々', 'ª', 'º', 'ƻ', 'ǀ', '中', '文', 'あ', 'ア', '한', 'ا', 'ب', 'א', 'क', 'ก',
  'Ж', 'ж', 'Ω', 'ω', 'ᾼ', 'ᾳ',
  '\u0301', '\u0308', '\u093e', '\u0940', '\u20dd', '\u0e31', '\u0e48', '\u064e', '\u0651', '\u05b0', '\u1ab0', '\ufe0f',
  '\u0663', '\u0969', '\u0e53', '\u216b', '\u00bd', '\u00b2', '\u2460', '\u{1d7ce}', '\u3007',
  '€', '©', '™', '°', '·', '•', '…', '—', '«', '»', '“', '”', '‘', '’', '¿', '¡', '§', '¶',
  '😀', '👍', '🏽', '🇺', '🇸', '👨‍👩‍👧', '❤️', '\u{1f9d1}\u200d\u{1f4bb}',
  '<|endoftext|>', '<|endofprompt|>', '<|fim_prefix|>', 'the', ' the', 'The', 'THE', 'ing', 'tion', 'http', '://', '1000',
];

// The palette's leading all-ASCII atoms.
const asciiAtoms = palette.findIndex((atom) => /[^\x00-\x7f]/.test(atom));

function randomString(random, atoms) {
  const count = 1 + Math.floor(random() * 40);
  let text = '';
  for (let i = 0; i < count; i++) text += palette[Math.floor(random() * atoms)];
  return text;
}

// A slice of a passage at code-point boundaries.
function window(random, passage) {
  const chars = [...passage];
  const start = Math.floor(random() * chars.length);
  const length = 1 + Math.floor(random() * 200);
  return chars.slice(start, start + length).join('');
}

function longCases(random) {
  const cases = [];
  const repeat = (unit, bytes) => unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)));
  for (const bytes of [129, 200, 1000, 6000]) {
    cases.push(repeat('a', bytes), repeat(' ', bytes), repeat('\n', bytes), repeat('7', bytes), repeat('!', bytes));
    cases.push(repeat('ab', bytes), repeat('aB', bytes), repeat('中', bytes), repeat('ภาษาไทย', bytes), repeat('😀', bytes));
    cases.push(repeat('x ', bytes), repeat(' \t', bytes), repeat('\r\n', bytes), repeat('é', bytes), repeat('e\u0301', bytes));
  }
  const lower = 'abcdefghijklmnopqrstuvwxyz';
  const base64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < 40; i++) {
    const length = 129 + Math.floor(random() * 3000);
    const alphabet = i % 2 === 0 ? lower : base64;
    let word = '';
    for (let j = 0; j < length; j++) word += alphabet[Math.floor(random() * alphabet.length)];
    cases.push(i % 4 === 1 ? ' ' + word : word);
  }
  // A long word made of real subwords, so the linear encoder meets long tokens.
  const parts = ['inter', 'national', 'ization', 'pneumono', 'ultra', 'microscopic', 'silico', 'volcano', 'coniosis', 'anti'];
  for (let i = 0; i < 20; i++) {
    let word = '';
    while (word.length < 150 + i * 40) word += parts[Math.floor(random() * parts.length)];
    cases.push(word, word.toUpperCase(), 'x' + word + "'s");
  }
  return cases;
}

// All texts, in a fixed order. `fuzz` cases come with `splitCheck: true`
// (their piece boundaries are also compared with a V8 regex).
export function tokenizerCorpus({ seed = 20250601, windows = 1200, fuzz = 3000 } = {}) {
  const random = prng(seed);
  const cases = [];
  for (const text of edgeCases) cases.push({ group: 'edge', text });
  for (const text of postUnicode15Cases) cases.push({ group: 'edge', text });
  for (const text of passages) cases.push({ group: 'passage', text });
  for (let i = 0; i < windows; i++) cases.push({ group: 'window', text: window(random, passages[i % passages.length]) });
  for (let i = 0; i < fuzz; i++) {
    // Half the fuzz cases use only the first (ASCII) part of the palette, so
    // ASCII rules are hit densely too.
    const atoms = i % 2 === 0 ? asciiAtoms : palette.length;
    cases.push({ group: 'fuzz', text: randomString(random, atoms), splitCheck: true });
  }
  for (const text of longCases(random)) cases.push({ group: 'long', text });
  return cases;
}
