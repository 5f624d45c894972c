"""The Python package against the tokvox command: same codes, same token
bytes, same audio; streaming, batches and bad input.

Run by tests/python/test_python.sh (meson test 'python'), once against the
build tree and once against an installed prefix.  Environment:
TOKVOX_CLI (the tokvox command), TOKVOX_SOURCE_ROOT.
"""
import ctypes
import json
import os
import pydoc
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
import warnings
import wave

import numpy as np

import tokvox

ROOT = os.environ.get("TOKVOX_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.environ["TOKVOX_CLI"]
SAMPLES = [os.path.join(ROOT, "samples", f) for f in ("speech_en.wav", "speech_child.wav")]


def run(*args):
    p = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True)
    if p.returncode not in (0, 3):
        raise AssertionError("tokvox %s: exit %d: %s" % (" ".join(map(str, args)),
                                                         p.returncode, p.stderr))
    return p.stdout


def read_wav_int16(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


class CommandParity(unittest.TestCase):
    """Codes, tokens and audio from Python equal the command's."""

    @classmethod
    def setUpClass(cls):
        cls.model = tokvox.Model()
        cls.work = tempfile.mkdtemp(prefix="tokvox-py-")
        cls.corpus = os.path.join(cls.work, "corpus")
        os.makedirs(cls.corpus)
        # the samples, and copies at other rates as int16 WAV made by sox
        for path in SAMPLES:
            shutil.copy(path, cls.corpus)
        base = os.path.join(ROOT, "samples", "speech_child.wav")
        for rate in (8000, 22050, 44100):
            subprocess.run(["sox", base, "-r", str(rate), "-b", "16",
                            os.path.join(cls.corpus, "child_%d.wav" % rate)], check=True)
        cls.files = sorted(os.listdir(cls.corpus))
        cls.tokens = {}
        for layout in tokvox.LAYOUTS:
            out = os.path.join(cls.work, "tok_" + layout)
            run("tokenize", cls.corpus, "-o", out, "--layout", layout, "-q", "-j", "2")
            cls.tokens[layout] = out
        out = os.path.join(cls.work, "tok_cb2")
        run("tokenize", cls.corpus, "-o", out, "--codebooks", "2", "-q", "-j", "2")
        cls.tokens["cb2"] = out

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def npy(self, which, name):
        return os.path.join(self.tokens[which], name[:-4] + ".npy")

    def test_encode_equals_tokenize_at_every_rate(self):
        for name in self.files:
            x, rate = read_wav_int16(os.path.join(self.corpus, name))
            codes = self.model.encode(x, rate)
            self.assertEqual(codes.dtype, np.int16)
            want = np.load(self.npy("codebooks", name))
            self.assertEqual(codes.shape, want.shape, name)
            self.assertTrue(np.array_equal(codes, want), "%s at %d Hz" % (name, rate))

    def test_float_input_equals_int16(self):
        x, rate = read_wav_int16(SAMPLES[1])
        a = self.model.encode(x, rate)
        b = self.model.encode(x.astype(np.float64) / 32768.0, rate)
        c = self.model.encode((x / 32768.0).astype(np.float32), rate)
        self.assertTrue(np.array_equal(a, b) and np.array_equal(a, c))

    def test_codebooks_and_bitrate(self):
        x, rate = read_wav_int16(SAMPLES[1])
        want = np.load(self.npy("cb2", os.path.basename(SAMPLES[1])))
        self.assertTrue(np.array_equal(self.model.encode(x, rate, codebooks=2), want))
        self.assertTrue(np.array_equal(self.model.encode(x, rate, bitrate=1), want))
        full = self.model.encode(x, rate)
        self.assertTrue(np.array_equal(full[:, :2], want))   # stages are prefixes

    def test_layouts_match_tokenize_byte_for_byte(self):
        for name in self.files:
            codes = np.load(self.npy("codebooks", name))
            for layout in tokvox.LAYOUTS:
                path = self.npy(layout, name)
                with open(path, "rb") as f:
                    want = f.read()
                mine = os.path.join(self.work, "mine.npy")
                tokvox.save_tokens(mine, codes, layout)
                with open(mine, "rb") as f:
                    self.assertEqual(f.read(), want, "%s %s" % (name, layout))
                # and back: explicit layout, and from the manifest alone
                k = codes.shape[1]
                self.assertTrue(np.array_equal(
                    tokvox.invert_layout(np.load(path), layout, k), codes))
                self.assertTrue(np.array_equal(tokvox.load_tokens(path), codes), path)
        codes = np.load(self.npy("codebooks", self.files[0]))
        self.assertTrue(np.array_equal(tokvox.from_flat(tokvox.to_flat(codes), 8), codes))
        self.assertTrue(np.array_equal(tokvox.from_delay(tokvox.to_delay(codes)), codes))

    def test_layout_inverses_refuse_bad_values(self):
        codes = np.load(self.npy("codebooks", self.files[0]))[:10]
        delay = tokvox.to_delay(codes)
        delay[0, 3] = 5                       # a pad replaced by a code
        with self.assertRaisesRegex(ValueError, r"\[0, 3\].*pad"):
            tokvox.from_delay(delay)
        flat = tokvox.to_flat(codes)
        flat[1] = 0                           # codebook 1's id in codebook 0's range
        with self.assertRaisesRegex(ValueError, r"element 1 \(codebook 1\)"):
            tokvox.from_flat(flat, 8)
        with self.assertRaisesRegex(ValueError, "multiple"):
            tokvox.from_flat(flat[:-1], 8)
        with self.assertRaisesRegex(ValueError, r"\[2, 0\] = 1024"):
            tokvox.invert_layout(np.where(np.arange(10)[:, None] == 2, 1024, codes), "codebooks")
        negative = codes.copy()
        negative[4, 2] = -1
        with self.assertRaisesRegex(ValueError, r"\[4, 2\] = -1"):
            tokvox.apply_layout(negative, "flat")
        with self.assertRaises(TypeError):
            tokvox.apply_layout(codes.astype(np.float32))
        with self.assertRaises(ValueError):
            tokvox.apply_layout(codes, "interleaved")
        bad = os.path.join(self.work, "bad.npy")
        with open(bad, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00garbage")
        with self.assertRaisesRegex(ValueError, "bad.npy"):
            tokvox.load_tokens(bad)

    def test_decode_equals_detokenize(self):
        name = os.path.basename(SAMPLES[1])
        codes = np.load(self.npy("codebooks", name))
        wav = os.path.join(self.work, "d.wav")
        # without a manifest (a copy outside the folder): (frames - 1) * hop samples
        lone = os.path.join(self.work, "lone.npy")
        shutil.copy(self.npy("codebooks", name), lone)
        run("detokenize", lone, wav)
        want, rate = read_wav_int16(wav)
        got = self.model.decode(codes)
        self.assertEqual(rate, self.model.sample_rate)
        self.assertEqual(got.dtype, np.float32)
        self.assertEqual(len(got), len(want))
        # the command writes 16-bit PCM: equal to within its rounding
        pcm = np.clip(np.round(got.astype(np.float64) * 32768), -32768, 32767)
        self.assertLessEqual(np.abs(pcm - want).max(), 1)
        # fewer codebooks, a given length, another rate
        run("detokenize", lone, wav, "--codebooks", "4", "--rate", "22050")
        want, rate = read_wav_int16(wav)
        got = self.model.decode(codes, codebooks=4, sample_rate=22050)
        self.assertEqual(len(got), len(want))
        pcm = np.clip(np.round(got.astype(np.float64) * 32768), -32768, 32767)
        self.assertLessEqual(np.abs(pcm - want).max(), 1)
        x, _ = read_wav_int16(SAMPLES[1])
        self.assertEqual(len(self.model.decode(codes, length=len(x))), len(x))
        # without the post-filter: detokenize --no-postfilter, and not the default
        run("detokenize", lone, wav, "--no-postfilter")
        want, _ = read_wav_int16(wav)
        raw = self.model.decode(codes, postfilter=False)
        pcm = np.clip(np.round(raw.astype(np.float64) * 32768), -32768, 32767)
        self.assertLessEqual(np.abs(pcm - want).max(), 1)
        self.assertGreater(np.abs(raw - self.model.decode(codes)).max(), 1e-3)

    def test_dataset_over_a_tokenized_folder(self):
        from tokvox.dataset import TokenDataset
        for layout in tokvox.LAYOUTS:
            ds = TokenDataset(self.tokens[layout])
            self.assertEqual(len(ds), len(self.files))
            for i, e in enumerate(ds.entries):
                want = np.load(os.path.join(self.tokens["codebooks"], e["output"]))
                self.assertTrue(np.array_equal(ds[i], want))
        ds = TokenDataset(self.tokens["delay"], max_frames=50, rng=1)
        self.assertTrue(all(len(ds[i]) == 50 for i in range(len(ds))))
        try:
            import torch  # noqa: F401
        except ImportError:
            return
        from tokvox.dataset import collate, torch_dataset
        loader = torch.utils.data.DataLoader(torch_dataset(self.tokens["flat"]), batch_size=3,
                                             collate_fn=collate)
        batch, lengths = next(iter(loader))
        self.assertEqual(tuple(batch.shape[::2]), (3, 8))
        self.assertEqual(int(lengths.max()), batch.shape[1])


class EncodeParity(unittest.TestCase):
    """Model.encode equals `tokvox encode` (the .tvx codes), at the model's
    rate and at 44.1 kHz."""

    @classmethod
    def setUpClass(cls):
        cls.model = tokvox.Model()
        cls.work = tempfile.TemporaryDirectory(prefix="tokvox-py-")
        cls.wav44 = os.path.join(cls.work.name, "child_44100.wav")
        subprocess.run(["sox", SAMPLES[1], "-r", "44100", "-b", "16", cls.wav44], check=True)

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()

    def test_encode_equals_tvx_of_tokvox_encode(self):
        for path in SAMPLES + [self.wav44]:
            tvx = os.path.join(self.work.name, "a.tvx")
            run("encode", path, tvx, "-q", "--bitrate", "2")
            want, header = tokvox.read_tvx(tvx)
            x, rate = read_wav_int16(path)
            got = self.model.encode(x, rate, bitrate=2)
            self.assertEqual(header["codebooks"], 4)
            self.assertEqual(header["model_id"], self.model.model_id)
            self.assertTrue(np.array_equal(got, want), path)
            self.assertTrue(np.array_equal(self.model.encode_file(path, codebooks=4), want))


class InProcess(unittest.TestCase):
    """What only the package does: streaming, batches, info, threads."""

    @classmethod
    def setUpClass(cls):
        cls.model = tokvox.Model()
        cls.x, cls.rate = read_wav_int16(SAMPLES[0])

    def test_properties_and_info_match_tokvox_info(self):
        m = self.model
        info = json.loads(run("info", "--json"))
        mine = m.info()
        for key in info:
            self.assertEqual(mine.get(key), info[key], key)
        self.assertEqual((m.sample_rate, m.frame_rate, m.num_codebooks), (16000, 50.0, 8))
        self.assertEqual(m.bitrates[2], 1.0)
        self.assertAlmostEqual(m.latency, m.latency_samples / 16000)
        self.assertIn("tokvox-16k", repr(m))

    def test_model_info_declaration_follows_the_size_rule(self):
        # _lib.ModelInfo mirrors tokvox_model_info, leading size included:
        # the library fills what the size covers and refuses a forgotten one
        from tokvox._lib import ModelInfo, lib
        self.assertEqual(lib.tvpy_model_info_size(), ctypes.sizeof(ModelInfo))
        info = ModelInfo()
        self.assertEqual(info.size, ctypes.sizeof(ModelInfo))
        self.assertEqual(lib.tokvox_model_get_info(self.model._h, ctypes.byref(info)), 0)
        self.assertEqual((info.size, info.sample_rate, info.name), (
            ctypes.sizeof(ModelInfo), self.model.sample_rate, self.model.name.encode()))
        forgot = ModelInfo()
        forgot.size = 0
        self.assertEqual(lib.tokvox_model_get_info(self.model._h, ctypes.byref(forgot)),
                         -1)   # TOKVOX_ERR_INVALID_ARGUMENT, nothing written
        self.assertEqual((forgot.sample_rate, forgot.name), (0, b""))

    def test_batch_identical_to_one_by_one(self):
        rng = np.random.default_rng(7)
        clips = [self.x[:n] for n in (1, 319, 320, 16000, 40000)]
        clips += [(rng.standard_normal(8000) * 0.1).astype(np.float32), self.x]
        rates = [self.rate] * 5 + [8000, 44100]
        one = [self.model.encode(c, r, codebooks=6) for c, r in zip(clips, rates)]
        for threads in (1, 3):
            many = self.model.encode_batch(clips, rates, codebooks=6, threads=threads)
            self.assertEqual(len(many), len(one))
            for a, b in zip(one, many):
                self.assertTrue(np.array_equal(a, b))
        self.assertEqual(self.model.encode_batch([], 16000), [])

    def test_encoding_releases_the_gil(self):
        # while one C call encodes 30 s in a worker thread, this thread runs
        # Python (with the GIL held through the call it would not get a tick)
        x = np.ascontiguousarray(np.tile(self.x, 5)[:30 * 16000] / 32768.0, dtype=np.float32)
        done = threading.Event()
        t = threading.Thread(target=lambda: (self.model._encode_prepared(x, 16000, 8),
                                             done.set()))
        ticks = 0
        t.start()
        while not done.wait(0.001):
            ticks += 1
        t.join()
        self.assertGreaterEqual(ticks, 10)

    def test_streaming_equals_whole(self):
        rng = random.Random(3)
        want = self.model.encode(self.x, self.rate, codebooks=4)
        enc = tokvox.Encoder(self.model, codebooks=4)
        for attempt in range(2):             # again after reset
            got, i = [], 0
            while i < len(self.x):
                n = rng.choice([0, 1, 7, 160, 320, 999, 4000])
                got.append(enc.push(self.x[i:i + n]))
                i += n
            got.append(enc.flush())
            self.assertTrue(np.array_equal(np.concatenate(got), want))
            enc.reset()
        enc.close()
        whole = self.model.decode(want, length=len(self.x))
        with tokvox.Decoder(self.model, stream_codebooks=4) as dec:
            pcm, i = [], 0
            while i < len(want):
                n = rng.choice([1, 2, 5, 64])
                pcm.append(dec.push(want[i:i + n]))
                i += n
            pcm.append(dec.flush())
            self.assertTrue(np.array_equal(np.concatenate(pcm)[:len(self.x)], whole))
            dec.reset()
            dec.push(want[:3])
            self.assertEqual(len(dec.conceal()), self.model.hop)
        dec2 = tokvox.Decoder(self.model, codebooks=2, stream_codebooks=4)
        out = np.concatenate([dec2.push(want), dec2.flush()])[:len(self.x)]
        self.assertTrue(np.array_equal(out, self.model.decode(want, codebooks=2,
                                                              length=len(self.x))))

    def test_threads_setting(self):
        before = tokvox.get_threads()
        try:
            self.assertEqual(tokvox.set_threads(2), 2)
            a = self.model.encode(self.x, self.rate)
            tokvox.set_threads(1)
            self.assertTrue(np.array_equal(a, self.model.encode(self.x, self.rate)))
        finally:
            tokvox.set_threads(before)

    def test_help_and_docstrings(self):
        text = pydoc.render_doc(tokvox, renderer=pydoc.plaintext)
        for word in ("Model", "encode_batch", "Encoder", "Decoder", "load_tokens", "Error"):
            self.assertIn(word, text)
        for name in tokvox.__all__:
            obj = getattr(tokvox, name)
            if callable(obj):
                self.assertTrue(obj.__doc__, name)

    def test_imports_without_torch(self):
        code = ("import sys; sys.modules['torch'] = None; import tokvox, tokvox.dataset; "
                "print('ok')")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        self.assertEqual(p.stdout.strip(), "ok", p.stderr)


class BadInput(unittest.TestCase):
    """Exceptions with the library's message, never a crash."""

    @classmethod
    def setUpClass(cls):
        cls.model = tokvox.Model()

    def test_missing_and_damaged_model(self):
        with self.assertRaises(tokvox.Error) as e:
            tokvox.Model("/nonexistent/m.safetensors")
        self.assertIn("/nonexistent/m.safetensors", str(e.exception))
        self.assertLess(e.exception.code, 0)
        with tempfile.NamedTemporaryFile(suffix=".safetensors") as f:
            f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": 1}       ")
            f.flush()
            with self.assertRaises(tokvox.Error) as e:
                tokvox.Model(f.name)
            self.assertIn(f.name, str(e.exception))

    def test_bad_audio_arrays(self):
        m = self.model
        for bad in (np.zeros(10, np.complex64), np.zeros(10, np.uint8), np.zeros(10, bool),
                    np.array(["a", "b"]), np.array([object()]), "speech.wav", [[1.0], [2.0, 3.0]]):
            with self.assertRaises(TypeError, msg=repr(bad)):
                m.encode(bad, 16000)
        for bad in (np.zeros((10, 2), np.float32), np.float32(0.5), np.zeros((0, 0))):
            with self.assertRaises(ValueError, msg=repr(bad)):
                m.encode(bad, 16000)
        for rate in (0, -1, 999, 384001, 2 ** 40):
            with self.assertRaises(ValueError):
                m.encode(np.zeros(10, np.float32), rate)
        for rate in (16000.0, "16000", None, True):
            with self.assertRaises(TypeError):
                m.encode(np.zeros(10, np.float32), rate)
        for kw in ({"codebooks": 0}, {"codebooks": 9}, {"bitrate": 0.7}, {"bitrate": 0},
                   {"bitrate": float("nan")}, {"codebooks": 2, "bitrate": 1}):
            with self.assertRaises(ValueError, msg=repr(kw)):
                m.encode(np.zeros(10, np.float32), 16000, **kw)
        with self.assertRaises(TypeError):
            m.encode(np.zeros(10, np.float32), 16000, codebooks=2.0)
        with self.assertRaises(ValueError):
            m.encode_batch([np.zeros(10)], [16000, 8000])
        with self.assertRaises(TypeError):
            m.encode_batch([np.zeros(10), "x"], 16000)

    def test_empty_and_tiny_input(self):
        for rate in (16000, 44100):
            codes = self.model.encode(np.zeros(0, np.float32), rate)
            self.assertEqual(codes.shape, (self.model.frames_for_samples(0), 8))
            self.assertEqual(self.model.encode(np.zeros(1, np.int16), rate).shape[1], 8)
        self.assertEqual(self.model.decode(np.zeros((0, 8), np.int16)).shape, (0,))

    def test_nan_inf_and_overs_are_cleaned_with_a_warning(self):
        x = (np.sin(np.arange(8000) * 0.05) * 0.5).astype(np.float32)
        dirty = x.copy()
        dirty[100], dirty[200], dirty[300], dirty[400] = np.nan, np.inf, -np.inf, 7.0
        clean = x.copy()
        clean[100] = clean[200] = clean[300] = 0.0
        clean[400] = 1.0
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got = self.model.encode(dirty, 16000)
            self.assertEqual(len(w), 2)
            self.assertIn("3 NaN/Inf", str(w[0].message))
            self.assertTrue(np.isnan(dirty[100]))    # the caller's array is untouched
            self.assertTrue(np.array_equal(got, self.model.encode(clean, 16000)))
            self.assertTrue(np.array_equal(got, self.model.encode(dirty.astype(np.float64),
                                                                  16000)))
        enc = tokvox.Encoder(self.model)
        streamed = np.concatenate([enc.push(dirty), enc.flush()])
        self.assertTrue(np.array_equal(streamed, got))

    def test_bad_codes(self):
        m = self.model
        good = np.zeros((5, 8), np.int16)
        for bad, exc in ((good - 1, ValueError), (good + 1024, ValueError),
                         (np.zeros((5, 9), np.int16), ValueError), (np.zeros(5, np.int16), ValueError),
                         (np.zeros((5, 0), np.int16), ValueError),
                         (np.zeros((5, 8), np.float32), TypeError),
                         (np.full((5, 8), 2 ** 40), ValueError)):
            with self.assertRaises(exc, msg=repr(bad.shape)):
                m.decode(bad)
        with self.assertRaisesRegex(ValueError, r"\[3, 5\] = 4096"):
            c = good.copy()
            c[3, 5] = 4096
            m.decode(c)
        with self.assertRaises(ValueError):
            m.decode(good, codebooks=9)
        with self.assertRaises(ValueError):
            m.decode(good, length=10 ** 6)
        dec = tokvox.Decoder(m, stream_codebooks=4)
        with self.assertRaises(ValueError):
            dec.push(good)                        # 8 codes per frame into a 4-code stream
        with self.assertRaises(ValueError):
            tokvox.Decoder(m, codebooks=5, stream_codebooks=4)

    def test_closed_sessions_and_wrong_model(self):
        enc = tokvox.Encoder(self.model)
        enc.close()
        enc.close()
        with self.assertRaisesRegex(ValueError, "closed"):
            enc.push(np.zeros(320, np.float32))
        dec = tokvox.Decoder(self.model)
        dec.close()
        with self.assertRaisesRegex(ValueError, "closed"):
            dec.flush()
        with self.assertRaises(TypeError):
            tokvox.Encoder("model")

    def test_bad_files(self):
        with tempfile.TemporaryDirectory() as d:
            for name, data in (("empty.wav", b""), ("junk.flac", os.urandom(300)),
                               ("cut.tvx", b"TVX")):
                path = os.path.join(d, name)
                with open(path, "wb") as f:
                    f.write(data)
                with self.assertRaises(tokvox.Error) as e:
                    if name.endswith(".tvx"):
                        tokvox.read_tvx(path)
                    else:
                        self.model.encode_file(path)
                self.assertIn(path, str(e.exception))
            with self.assertRaises(tokvox.Error) as e:
                tokvox.read_audio(os.path.join(d, "missing.wav"))
            self.assertIn("missing.wav", e.exception.message)
            # a truncated bitstream from a real one
            tvx = os.path.join(d, "a.tvx")
            run("encode", SAMPLES[1], tvx, "-q")
            with open(tvx, "rb") as f:
                data = f.read()
            with open(tvx, "wb") as f:
                f.write(data[:len(data) // 2])
            with self.assertRaises(tokvox.Error) as e:
                tokvox.read_tvx(tvx)
            self.assertIn(tvx, str(e.exception))


if __name__ == "__main__":
    unittest.main()
