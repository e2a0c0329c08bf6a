"""SipHash-1-3 vectors from CPython's own implementation, a source independent of both
shared/packet/siphash.ts and siphash_ref.c: since Python 3.11, hash(bytes) is siphash13 keyed
with the first 16 bytes of the hash secret, and with PYTHONHASHSEED=N the secret is N's LCG
stream (Python/bootstrap_hash.c, lcg_urandom). For each seed this runs a child Python with that
seed, hashes messages of every length 1..40, and records (key, message, 64-bit result).
Run: python3 python_siphash13.py > python-vectors.json (needs CPython >= 3.11, 64-bit)."""
import json
import subprocess
import sys

assert sys.hash_info.algorithm == "siphash13" and sys.hash_info.width == 64 and sys.hash_info.cutoff == 0


def lcg_key(seed):
    x = seed
    out = bytearray()
    for _ in range(16):
        x = (x * 214013 + 2531011) & 0xFFFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)


CHILD = "import sys, json; ms = json.load(sys.stdin); print(json.dumps([hash(bytes.fromhex(m)) & 0xFFFFFFFFFFFFFFFF for m in ms]))"
vectors = []
for seed in (1, 2, 7, 1234, 4294967295):
    msgs = [bytes(((seed + 31 * i + 7 * n) & 0xFF) for i in range(n)).hex() for n in range(1, 41)]
    res = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(msgs), capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": str(seed)})
    for m, h in zip(msgs, json.loads(res.stdout)):
        if h == 0xFFFFFFFFFFFFFFFE:
            continue  # CPython maps a hash of -1 to -2: not the raw SipHash value
        vectors.append({"key": lcg_key(seed).hex(), "message": m, "siphash13": "%016x" % h})
print(json.dumps({"source": "CPython %s hash(bytes), PYTHONHASHSEED" % sys.version.split()[0], "vectors": vectors}, indent=0))
