"""Worker processes on 127.0.0.1 for the multi-worker tests: free ports, a cluster's
TF_CONFIG, and processes that are bounded in time and always ended."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_ports(count):
    """``count`` ports free on 127.0.0.1 now (held open together, so all differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def consecutive_free_ports(count):
    """``count`` consecutive ports free on 127.0.0.1 (SLURM's tasks on one node take those)."""
    for _ in range(50):
        base = free_ports(1)[0]
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise RuntimeError("no %d consecutive free ports" % count)


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": ["127.0.0.1:%d" % p for p in ports]},
                       "task": {"type": "worker", "index": index}})


class Workers:
    """Processes started together; ``wait`` bounds them; leaving the block kills what is left."""

    def __init__(self, folder):
        self.folder = folder
        self.procs = []

    def start(self, command, env):
        index = len(self.procs)
        log = open(os.path.join(str(self.folder), "worker%d.log" % index), "w+")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env)
        self.procs.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env=env, cwd=REPO), log))

    def start_cluster(self, command, count=2):
        """``count`` workers running ``command``, a cluster on free ports by TF_CONFIG."""
        ports = free_ports(count)
        for i in range(count):
            self.start(command, {"TF_CONFIG": tf_config(ports, i)})

    def log(self, index):
        log = self.procs[index][1]
        log.flush()
        with open(log.name) as f:
            return f.read()

    def wait_for(self, index, text, timeout):
        """Waits until worker ``index`` has logged ``text``; False after ``timeout`` s."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log(index):
                return True
            if self.procs[index][0].poll() is not None:
                return text in self.log(index)
            time.sleep(0.2)
        return False

    def signal(self, index, signum):
        self.procs[index][0].send_signal(signum)

    def wait(self, timeout):
        """Every worker's exit status; a worker still running after ``timeout`` s fails."""
        deadline = time.time() + timeout
        codes = []
        for proc, _ in self.procs:
            try:
                codes.append(proc.wait(max(deadline - time.time(), 0.1)))
            except subprocess.TimeoutExpired:
                raise AssertionError("a worker ran past %d s:\n%s" % (
                    timeout, "\n".join(self.log(i)[-3000:] for i in range(len(self.procs)))))
        return codes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for proc, log in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            log.close()


def script(name):
    return [sys.executable, os.path.join(REPO, "scripts", name)]


def pretraining_command(input_file, config, output, steps, **extra):
    """run_pretraining.py as a worker of a multi-worker cluster: the records at length 32 (5
    predictions), batch 8, a checkpoint every 2 steps, a log line every step; ``extra`` flags
    over those."""
    flags = dict(input_file=input_file, bert_config_file=config, output_dir=output,
                 do_train="true", train_batch_size=8, max_seq_length=32,
                 max_predictions_per_seq=5, num_train_steps=steps, num_warmup_steps=0,
                 learning_rate=1e-4, save_checkpoints_steps=2, log_every_steps=1,
                 distribution="multi_worker", worker_timeout_secs=60)
    flags.update(extra)
    return script("run_pretraining.py") + ["--%s=%s" % kv for kv in flags.items()]
