"""Every data stage on a real 2-node Ray cluster (`infra/ray/local_cluster.py`) with shared storage by URI:
`RAY_ADDRESS=<head> cookbook <stage> --input s3://... --output s3://...` for ingest -> recall -> clean -> dedup
-> sample -> curate -> decontaminate -> tokenize against a moto S3 server on loopback (the nodes reach it by
the endpoint in their environment, as cluster nodes reach a bucket). Both nodes run tasks, and every stage
keeps and drops the same ids (drop reasons, `duplicate_of`) as the same chain on local disk with a private
Ray instance, as a laptop runs it."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from tests.common.chain import COMPARED, outcome, run_chain
from tests.ops.servers import BIN, ROOT, base_env, sh
from tests.ops.test_ray_cluster import CLUSTER, nodes_with_workers


def cookbook_in(cwd: Path, env: dict):
    def cookbook(*args: str) -> int:
        cmd = [str(BIN / "cookbook"), *args, "--params", str(ROOT / "params.yaml"), "--set", "tracking.enabled=false"]
        proc = sh(cmd, cwd, env, timeout=600, check=False)
        assert proc.returncode == 0, f"{' '.join(args[:1])} failed:\n{proc.stderr[-3000:]}"
        return proc.returncode
    return cookbook


def test_every_data_stage_runs_on_a_two_node_cluster_against_a_bucket(tmp_path):
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the server's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    aws = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="corpus")
    folder = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # Unix socket paths must stay short
    env = base_env(PYTHONPATH=str(ROOT), **aws)
    (tmp_path / "cluster").mkdir()
    (tmp_path / "local").mkdir()
    try:
        address = sh([str(BIN / "python"), str(CLUSTER), "start", "--dir", str(folder), "--nodes", "2"], tmp_path, env,
                     timeout=300).stdout.split()[-1]
        try:
            run_chain("s3://corpus/chain", cookbook_in(tmp_path / "cluster", {**env, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "token"}))
            assert nodes_with_workers(folder / "ray") == 2, "both nodes ran tasks of the stages"
        finally:
            sh([str(BIN / "python"), str(CLUSTER), "stop", "--dir", str(folder)], tmp_path, env, timeout=120, check=False)
            shutil.rmtree(folder, ignore_errors=True)
        run_chain(str(tmp_path / "local" / "data"), cookbook_in(tmp_path / "local", env))
        import os
        saved = {k: os.environ.get(k) for k in aws}
        os.environ.update(aws)  # this process reads the bucket too
        try:
            for name in COMPARED:
                assert outcome("s3://corpus/chain", name) == outcome(str(tmp_path / "local" / "data"), name), name
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        assert (tmp_path / "cluster" / "dedup.reports" / "dedup_report.json").exists()
    finally:
        server.stop()
