// Splits a document into chunks for embedding, each at most `maxTokens` by
// the model's exact tokenizer (DESIGN §3's `embedding` operation): paragraphs
// are kept whole and packed together while they fit; a paragraph too long
// for one chunk is cut at token boundaries, moved back where a cut would
// fall inside a character. Needs the model's tokenizer loaded.
import { decode, encode, tokenCount, type ModelId } from '@tokenmeter/wasm';

export interface Chunk { text: string; tokens: number }

export function splitIntoChunks(text: string, model: ModelId, maxTokens: number): Chunk[] {
  const chunks: Chunk[] = [];
  let current = '';
  const flush = () => {
    if (current.trim() !== '') chunks.push({ text: current, tokens: tokenCount(current, model) });
    current = '';
  };
  for (const paragraph of text.split(/\n\s*\n/)) {
    if (paragraph.trim() === '') continue;
    const joined = current === '' ? paragraph : `${current}\n\n${paragraph}`;
    if (tokenCount(joined, model) <= maxTokens) {
      current = joined;
      continue;
    }
    flush();
    if (tokenCount(paragraph, model) <= maxTokens) {
      current = paragraph;
      continue;
    }
    for (const piece of cutByTokens(paragraph, model, maxTokens)) chunks.push({ text: piece, tokens: tokenCount(piece, model) });
  }
  flush();
  return chunks;
}

// Windows of at most maxTokens ids, decoded; a window whose end would cut a
// character gives its last ids to the next one.
function cutByTokens(text: string, model: ModelId, maxTokens: number): string[] {
  const ids = encode(text, model);
  const pieces: string[] = [];
  let start = 0;
  while (start < ids.length) {
    let end = Math.min(ids.length, start + maxTokens);
    let piece = decode(ids.subarray(start, end), model);
    while (end < ids.length && end - start > 1 && piece.endsWith('\uFFFD')) {
      end -= 1;
      piece = decode(ids.subarray(start, end), model);
    }
    pieces.push(piece);
    start = end;
  }
  // A piece may re-encode to a few more ids than its window: split again if so.
  return pieces.flatMap((piece) => (tokenCount(piece, model) > maxTokens && piece.length > 1
    ? cutByTokens(piece.slice(0, Math.ceil(piece.length / 2)), model, maxTokens).concat(cutByTokens(piece.slice(Math.ceil(piece.length / 2)), model, maxTokens))
    : [piece]));
}
