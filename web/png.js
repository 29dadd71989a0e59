// @ts-check
/**
 * Read the text chunks (tEXt, iTXt, zTXt) of a PNG, where SaveImage stores the `prompt` and
 * `workflow` JSON. Compressed chunks are inflated with the browser's DecompressionStream.
 */

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

/** @param {Uint8Array} bytes */
async function inflate(bytes) {
  const stream = new Blob([/** @type {BlobPart} */ (bytes)]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Text chunks of a PNG as {keyword: text}; throws if the bytes are not a PNG.
 * @param {ArrayBuffer} buffer @returns {Promise<Record<string, string>>}
 */
export async function readPngText(buffer) {
  const bytes = new Uint8Array(buffer);
  if (!SIGNATURE.every((b, i) => bytes[i] === b)) throw new Error("not a PNG file");
  const dv = new DataView(buffer);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8");
  /** @type {Record<string, string>} */
  const out = {};
  let pos = 8;
  while (pos + 8 <= bytes.length) {
    const len = dv.getUint32(pos);
    const type = latin1.decode(bytes.subarray(pos + 4, pos + 8));
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    pos += 12 + len;
    if (type === "IEND") break;
    const nul = data.indexOf(0);
    if (nul < 0) continue;
    const keyword = latin1.decode(data.subarray(0, nul));
    if (type === "tEXt") out[keyword] = latin1.decode(data.subarray(nul + 1));
    else if (type === "zTXt") out[keyword] = latin1.decode(await inflate(data.subarray(nul + 2)));
    else if (type === "iTXt") {
      const compressed = data[nul + 1] === 1;
      let p = nul + 3;
      p = data.indexOf(0, p) + 1; // language tag
      p = data.indexOf(0, p) + 1; // translated keyword
      const text = data.subarray(p);
      out[keyword] = utf8.decode(compressed ? await inflate(text) : text);
    }
  }
  return out;
}
