// Microphone in (16-bit PCM frames for /asr/live) and speech out (PCM chunks played gap-free in order).

const FRAME_SECONDS = 0.04;
const PRE_ROLL_SECONDS = 0.3; // sent before a hold-to-talk press, so the first syllable is not cut

/** The microphone as s16le PCM frames at ``sampleRate`` (16 kHz when the browser resamples, else its own rate). */
export class Microphone {
  constructor() {
    this.context = null;
    this.stream = null;
    this.onFrame = null; // (Int16Array, capturedAtMs) => void
    this.recent = []; // the last PRE_ROLL_SECONDS of frames
  }

  get sampleRate() {
    return this.context ? this.context.sampleRate : 16000;
  }

  async start() {
    if (this.context) return;
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false },
    });
    try {
      await this.connect(new AudioContext({ sampleRate: 16000 }));
    } catch {
      await this.connect(new AudioContext()); // no resampling from the mic's rate: send the context's own
    }
  }

  async connect(context) {
    try {
      await context.audioWorklet.addModule("assets/pcm-worklet.js");
      const source = context.createMediaStreamSource(this.stream);
      const frameSamples = Math.round(context.sampleRate * FRAME_SECONDS);
      const node = new AudioWorkletNode(context, "pcm-frames", { processorOptions: { frameSamples } });
      node.port.onmessage = (event) => this.frame(new Int16Array(event.data));
      source.connect(node);
      await context.resume();
      this.context = context;
    } catch (error) {
      context.close();
      throw error;
    }
  }

  frame(samples) {
    const now = performance.now();
    this.recent.push(samples);
    const keep = Math.ceil(PRE_ROLL_SECONDS / FRAME_SECONDS);
    if (this.recent.length > keep) this.recent.shift();
    if (this.onFrame) this.onFrame(samples, now);
  }

  /** The last few hundred milliseconds, for a session that starts now. */
  preRoll() {
    return [...this.recent];
  }
}

/** Plays PCM chunks in order without gaps; counts the seconds played; stops at once on barge-in. */
export class Player {
  constructor() {
    this.context = null;
    this.sources = new Set();
    this.reset();
    this.onStart = null; // (startsAtMs) => void, when the first chunk of a turn is scheduled
    this.onIdle = null; // () => void, when the last scheduled chunk has finished
  }

  reset() {
    this.nextTime = 0;
    this.scheduled = []; // [startTime, duration] in context time
    this.started = false;
  }

  /** Create or resume the output (call from a user gesture: browsers keep audio muted until one). */
  unlock() {
    if (!this.context) this.context = new AudioContext();
    if (this.context.state === "suspended") this.context.resume();
  }

  /** Queue 16-bit PCM (an Int16Array) at ``rate`` right after what is already queued. */
  play(samples, rate) {
    this.unlock();
    if (!samples.length) return;
    const buffer = this.context.createBuffer(1, samples.length, rate);
    const channel = buffer.getChannelData(0);
    for (let i = 0; i < samples.length; i++) channel[i] = samples[i] / 32768;
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    const now = this.context.currentTime;
    const startAt = Math.max(this.nextTime, now + 0.02);
    source.start(startAt);
    this.nextTime = startAt + buffer.duration;
    this.scheduled.push([startAt, buffer.duration]);
    this.sources.add(source);
    source.onended = () => {
      this.sources.delete(source);
      if (!this.sources.size && this.onIdle) this.onIdle();
    };
    if (!this.started) {
      this.started = true;
      if (this.onStart) this.onStart(performance.now() + (startAt - now) * 1000);
    }
  }

  get playing() {
    return this.sources.size > 0;
  }

  /** Seconds of this turn's audio heard so far. */
  playedSeconds() {
    if (!this.context) return 0;
    const now = this.context.currentTime;
    return this.scheduled.reduce((sum, [start, duration]) => sum + Math.min(Math.max(now - start, 0), duration), 0);
  }

  /** Seconds of this turn's audio queued in all. */
  queuedSeconds() {
    return this.scheduled.reduce((sum, [, duration]) => sum + duration, 0);
  }

  /** Stop everything now (barge-in); returns the seconds that had been played. */
  stop() {
    const played = this.playedSeconds();
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // already stopped
      }
    }
    this.sources.clear();
    this.scheduled = this.scheduled.map(([start, duration]) => [start, Math.min(Math.max(this.context.currentTime - start, 0), duration)]);
    this.nextTime = 0;
    return played;
  }
}

/** Reads a streamed WAV (/synthesize/stream: 44-byte header, then PCM) and hands whole samples to ``play``. */
export async function playWavStream(response, play) {
  const reader = response.body.getReader();
  let header = new Uint8Array(0);
  let rate = 0;
  let carry = null; // an odd byte left from the last chunk
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let bytes = value;
    if (!rate) {
      const joined = new Uint8Array(header.length + bytes.length);
      joined.set(header);
      joined.set(bytes, header.length);
      if (joined.length < 44) {
        header = joined;
        continue;
      }
      rate = new DataView(joined.buffer).getUint32(24, true);
      bytes = joined.subarray(44);
    }
    if (carry !== null) {
      const joined = new Uint8Array(bytes.length + 1);
      joined[0] = carry;
      joined.set(bytes, 1);
      bytes = joined;
      carry = null;
    }
    if (bytes.length % 2) {
      carry = bytes[bytes.length - 1];
      bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (bytes.length) {
      const copy = bytes.slice(); // aligned for Int16Array
      play(new Int16Array(copy.buffer), rate);
    }
  }
}

/** A mono 16-bit WAV file (Blob) from 16-bit samples, for a reference recording. */
export function wavBlob(samples, rate) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, 1, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  new Int16Array(buffer, 44).set(samples);
  return new Blob([buffer], { type: "audio/wav" });
}
