// Reads the machine-readable pixel stamp of media/stamp.py (department, frame counter, send time)
// from what a <video> shows now, through a canvas: 16x16 blocks from the top-left, one bit each.

const BLOCK = 16, NBITS = 80, MAGIC = 0b1010n;

function crc16(bytes) {  // CRC-16/CCITT-FALSE, as media/stamp.py
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = ((crc & 0x8000) ? ((crc << 1) ^ 0x1021) : (crc << 1)) & 0xffff;
  }
  return crc;
}

// {dept, frame, time_ms} of the frame a <video> (or a canvas) shows, or null (no stamp, or unreadable).
export function readStamp(video, canvas = document.createElement("canvas")) {
  const isVideo = video instanceof HTMLVideoElement;
  const w = isVideo ? video.videoWidth : video.width, h = isVideo ? video.videoHeight : video.height;
  if (!w || (isVideo && video.readyState < 2)) return null;
  const cols = Math.min(NBITS, Math.floor(w / BLOCK));
  if (cols < 8) return null;
  const rows = Math.ceil(NBITS / cols);
  if (h < rows * BLOCK) return null;
  canvas.width = cols * BLOCK;
  canvas.height = rows * BLOCK;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const q = BLOCK / 4;
  let word = 0n;
  for (let i = 0; i < NBITS; i++) {
    const r = Math.floor(i / cols), c = i % cols;
    let sum = 0, n = 0;
    for (let y = r * BLOCK + q; y < r * BLOCK + BLOCK - q; y++) {
      for (let x = c * BLOCK + q; x < c * BLOCK + BLOCK - q; x++) { sum += data[(y * canvas.width + x) * 4 + 1]; n++; }
    }
    word = (word << 1n) | (sum / n >= 128 ? 1n : 0n);
  }
  const payload = word >> 16n, crc = Number(word & 0xffffn);
  const bytes = [];
  for (let i = 7; i >= 0; i--) bytes.push(Number((payload >> BigInt(8 * i)) & 0xffn));
  if (crc16(bytes) !== crc || payload >> 60n !== MAGIC) return null;
  return { dept: Number((payload >> 52n) & 0xffn), frame: Number((payload >> 36n) & 0xffffn),
           time_ms: Number(payload % (1n << 36n)) };
}
