"""The grader's agent in the learner's kernel: the kernel side of autograder/remote.py.

``remote.Client`` sends this function's source (``inspect.getsource``) to the kernel with its first
request, and again whenever a request finds it gone; it is defined in the kernel's user namespace
and called once per request: ``_ag_agent('<json request>')``, in a cell of its own, or from the
kernel's event loop once ``_ag_listen`` (sent with it when the grader can reach the kernel's
folder) serves requests on a Unix socket. Its answer is one JSON payload between two ``_mark``
separators, printed on stdout (a cell) or handed to ``_reply`` (the listener sends it back on its
socket, or on IOPub when the request printed): ``{"ok": value}`` with the value encoded as
data (numbers, strings, tensors and arrays as bytes, lists, tuples, dicts, or a handle for any
other object), ``{"$err": [name, message]}``, or ``{"$cheat": where}`` when the learner's code
called into a forbidden mnlib file while the grader watched; ``"s"``, the seconds its work took in the
kernel (what the kernel says: benchmarks read it, grading never does).

It runs in the kernel, next to the learner's code, so nothing in it is trusted: a notebook that
replaces it can only make its own answers wrong, since what it sends back is data, decoded and
checked in the grader. It must stay self-contained (every import inside the function; no name
from this module), because only its source travels. It is a real file so that it can be read,
linted and tested like the rest; ``tests/test_remote.py`` runs it against the grader's client.
"""
import inspect


def _ag_agent(request, _mark="\x1eAG-RPC\x1e", _reply=None):
    import base64, json, math, sys, time
    started = time.perf_counter()
    import numpy as np
    # torch only if the notebook loaded it (importing it starts threads, which a notebook at its
    # process limit cannot afford); a request that carries tensors imports it
    torch = sys.modules.get("torch")
    if torch is None and ("$tensor" in request or "$file" in request or "$dtype" in request):
        import torch
    ns = globals()
    handles = ns.setdefault("_ag_handles", {})
    req = json.loads(request)

    def handle(v):
        hid = str(id(v))
        handles[hid] = v
        return {"$h": hid, "type": type(v).__module__ + "." + type(v).__qualname__,
                "module": torch is not None and isinstance(v, torch.nn.Module)}

    def enc(v, depth=0):
        t = type(v)
        if v is None or t in (bool, str, int):
            return v
        if t is float:
            return v if math.isfinite(v) else {"$float": repr(v)}
        if depth > 8:
            return handle(v)
        if torch is not None and isinstance(v, torch.Tensor):
            x = v.detach().cpu()
            if x.numel() > 4_000_000 or x.is_sparse or x.is_quantized or x.is_complex():
                return handle(v)
            name = str(x.dtype).replace("torch.", "")
            x = (x.float() if x.dtype == torch.bfloat16 else x).contiguous()
            return {"$tensor": [name, list(x.shape), base64.b64encode(x.numpy().tobytes()).decode()]}
        if isinstance(v, np.ndarray) and v.dtype.kind in "biuf" and v.size <= 4_000_000:
            a = np.ascontiguousarray(v).reshape(v.shape)  # ascontiguousarray makes a 0-d array 1-d
            return {"$ndarray": [a.dtype.str, list(a.shape), base64.b64encode(a.tobytes()).decode()]}
        if isinstance(v, np.generic) and v.dtype.kind in "biuf":
            return {"$npscalar": [v.dtype.str, base64.b64encode(v.tobytes()).decode()]}
        if torch is not None and isinstance(v, torch.dtype):
            return {"$dtype": str(v).replace("torch.", "")}
        if t is list and len(v) <= 100_000:
            return [enc(x, depth + 1) for x in v]
        if (t is tuple or (torch is not None and isinstance(v, torch.Size))
                or (isinstance(v, tuple) and hasattr(v, "_fields"))) \
                and len(v) <= 100_000:
            return {"$tuple": [enc(x, depth + 1) for x in v]}
        if t is dict or type(v).__name__ == "OrderedDict" and isinstance(v, dict):
            return {"$dict": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in v.items()]}
        return handle(v)

    def dec(v):
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "$h" in v:
            return handles[v["$h"]]
        if "$attr" in v:
            return getattr(handles[v["$attr"][0]], v["$attr"][1])
        if "$tensor" in v:
            name, shape, data = v["$tensor"]
            dtype = getattr(torch, name)
            if dtype == torch.bfloat16:
                raw = np.frombuffer(base64.b64decode(data), dtype=np.float32)
                return torch.from_numpy(raw.copy()).reshape(shape).to(dtype)
            raw = np.frombuffer(base64.b64decode(data), dtype=torch.empty(0, dtype=dtype).numpy().dtype)
            return torch.from_numpy(raw.copy()).reshape(shape)
        if "$ndarray" in v:
            dt, shape, data = v["$ndarray"]
            return np.frombuffer(base64.b64decode(data), dtype=np.dtype(dt)).copy().reshape(shape)
        if "$file" in v:
            return torch.load(v["$file"], weights_only=False)
        if "$tuple" in v:
            return tuple(dec(x) for x in v["$tuple"])
        if "$dict" in v:
            return {dec(k): dec(x) for k, x in v["$dict"]}
        if "$float" in v:
            return float(v["$float"])
        if "$dtype" in v:
            return getattr(torch, v["$dtype"])
        raise ValueError("cannot decode " + repr(v)[:80])

    def guarded(files, fn, *args, **kwargs):
        if not files:
            return fn(*args, **kwargs), None
        import mnlib, os
        root = os.path.dirname(os.path.abspath(mnlib.__file__)) + os.sep
        paths = tuple(root + f for f in files)
        hit = []

        def hook(frame, event, arg):
            if event == "call" and not hit and frame.f_code.co_filename.startswith(paths):
                hit.append(frame.f_code.co_filename.rsplit(os.sep, 1)[-1] + ":" + frame.f_code.co_name)
        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            result = fn(*args, **kwargs)
        finally:
            tampered = sys.getprofile() is not hook
            sys.setprofile(previous)
        if tampered:
            return None, "profiler"
        return result, (hit[0] if hit else None)

    op = req["op"]
    payload = None
    try:
        if op == "global":
            if req["name"] not in ns:
                raise NameError("name " + repr(req["name"]) + " is not defined")
            out = ns[req["name"]]
        elif op == "getattr":
            out = getattr(handles[req["h"]], req["name"])
        elif op in ("call", "eval"):
            files = req.get("guard")
            if op == "call":
                fn = handles[req["h"]] if "attr" not in req else getattr(handles[req["h"]], req["attr"])
                args, kwargs = dec(req["args"]), dec(req["kwargs"])
            else:
                import torch
                env = {"torch": torch, "np": np, "math": math}
                env.update(dec(req["names"]))
                fn, args, kwargs = eval, (req["src"], env), {}
            out, hit = guarded(files, fn, *args, **kwargs)
            if hit:
                payload = {"$cheat": hit}
        elif op == "define":
            import torch
            env = {"torch": torch, "np": np, "math": math, "__name__": "grader_kernel_helpers"}
            exec(req["src"], env)
            out = env[req["name"]]
        elif op == "list":
            out = list(handles[req["h"]])
        elif op == "len":
            out = len(handles[req["h"]])
        elif op == "getitem":
            out = handles[req["h"]][dec(req["key"])]
        elif op == "scan":
            key = "_ag_guard_" + req["digest"]
            if key not in ns:
                guard_ns = {"__name__": "grader_scan"}
                exec(req["guard"], guard_ns)
                ns[key] = guard_ns
            ns[key]["scan"](handles[req["h"]], req["what"])
            out = None
        elif op == "forget":
            handles.clear()
            out = None
        else:
            raise ValueError("unknown request " + repr(op))
        if payload is None:
            payload = {"ok": enc(out)}
    except BaseException as e:
        payload = {"$err": [type(e).__name__, str(e)[:2000]]}
    payload["s"] = time.perf_counter() - started  # the request's work in the kernel, for benchmarks only
    answer = _mark + json.dumps(payload) + _mark
    if _reply is None:
        print(answer, flush=True)
    else:
        _reply(answer)


def _ag_listen(path, token, _direct=8 << 20):
    """Serve the grader's later requests on a Unix socket bound at ``path`` (in the kernel's folder,
    which the grader sees at the same path). A request is a frame: its number and its length (two
    little-endian uint32), then the request's JSON; it is read by a handler on the kernel's own event
    loop, so it runs in the main thread when the kernel is idle, with no IPython cell, no shell message
    and no busy/idle status: a bare round trip costs well under a millisecond instead of 1.7 ms as a
    comm message, 5 ms as a cell (bench/bench_requests.py).

    The answer, ``{"id": number, "answer": text}``, is sent after flushing stdout and stderr, on one of
    two ways. If the kernel published nothing on IOPub while it served the request (its session's
    message counter did not move: no print, no display, no stream flushed) and the answer is at most
    ``_direct`` bytes, it goes back on the socket, in a frame like the request's (number, length, the
    JSON). Otherwise it is a ``comm_msg`` on IOPub, ``{"comm_id": token, "data": ...}``: what the
    learner's code printed reaches the grader before it, on the same channel, and is counted against
    the outputs' cap (the grader reads IOPub while it waits, either way). ``{"ready": true}`` says the
    connection was accepted; ``{"missing": true}``: ``_ag_agent`` is gone, the grader sends the request
    as a cell again. The per-cell time limit interrupts the kernel (SIGINT raises KeyboardInterrupt
    inside the request, as it would in a cell)."""
    import json, os, signal, socket, struct, sys
    from tornado.ioloop import IOLoop
    kernel = get_ipython().kernel  # noqa: F821 - in the kernel, IPython's builtin
    loop = IOLoop.current()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def published():
        return getattr(kernel.session, "message_count", None)

    def publish(data, conn=None, before=None):
        for stream in (sys.stdout, sys.stderr):
            try:
                if getattr(stream, "_flush_pending", True):  # ipykernel's: written to since its last flush
                    stream.flush()
            except Exception:
                pass
        if conn is not None and before is not None and published() == before:  # silent: on the socket
            body = json.dumps(data).encode()
            if len(body) <= _direct:
                try:
                    conn.sendall(struct.pack("<II", data["id"], len(body)) + body)
                    return
                except Exception:  # the grader stops waiting on the socket: on IOPub, as before
                    pass
        kernel.session.send(kernel.iopub_socket, "comm_msg", {"comm_id": token, "data": data})

    def serve(conn):
        def readable(fd, _events):
            try:
                head = conn.recv(8, socket.MSG_WAITALL)
                number, size = struct.unpack("<II", head)
                body = conn.recv(size, socket.MSG_WAITALL)
                if len(body) != size:
                    raise EOFError
            except Exception:  # the grader closed it (or sent something unreadable): stop serving
                loop.remove_handler(fd)
                conn.close()
                return
            before = published()
            agent = globals().get("_ag_agent")
            if agent is None:
                publish({"id": number, "missing": True}, conn, before)
                return
            answers = []
            previous = signal.signal(signal.SIGINT, signal.default_int_handler)
            try:
                agent(body.decode(), _reply=answers.append)
            except BaseException:  # an interrupt outside the agent's own try: no answer
                pass
            finally:
                signal.signal(signal.SIGINT, previous)
            publish({"id": number, "answer": answers[0] if answers else ""}, conn, before)

        loop.add_handler(conn.fileno(), readable, IOLoop.READ)

    def accept(fd, _events):
        loop.remove_handler(fd)
        try:
            conn, _ = listener.accept()
            before = published()
        finally:
            listener.close()
            try:
                os.unlink(path)
            except OSError:
                pass
        serve(conn)
        publish({"id": 0, "ready": True}, conn, before)

    loop.add_handler(listener.fileno(), accept, IOLoop.READ)


MARK = inspect.signature(_ag_agent).parameters["_mark"].default  # the separator's one home
DIRECT_MAX = inspect.signature(_ag_listen).parameters["_direct"].default  # the largest answer on the socket
