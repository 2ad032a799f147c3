"""`ksearch opensearch ...`: run a local OpenSearch (one node, or a cluster of several) without Docker."""

from __future__ import annotations

import typer
from rich.console import Console

from ksearch.opensearch_node import DEFAULT_VERSION, RELEASES, LocalCluster, LocalOpenSearch, OpenSearchNodeError
from ksearch.opensearch_node.cluster import recorded_cluster

opensearch_app = typer.Typer(
    name="opensearch",
    help=f"A local OpenSearch node or cluster ({' or '.join(RELEASES)}; downloaded from Maven Central, no Docker).",
    no_args_is_help=True,
)

_VERSION_HELP = (f"OpenSearch version: {', '.join(RELEASES)} (or just 2 / 3). Default: $KSEARCH_OPENSEARCH_VERSION, "
                 f"else {DEFAULT_VERSION} (runs on Java 17; 3.x needs Java 21+). Each is assembled in its own folder.")

_err = Console(stderr=True)


def _fail(e: Exception) -> None:
    _err.print(f"[red]error:[/] {e}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


@opensearch_app.command()
def start(
    port: int | None = typer.Option(None, "--port", "-p", help="HTTP port on 127.0.0.1 (default: a free one)."),
    timeout: float = typer.Option(180.0, help="Seconds to wait for the node to become ready."),
    ml: bool = typer.Option(False, "--ml", help="With ml-commons, to serve models inside OpenSearch (a 480 MB "
                            "download the first time; the node starts slower; 2.19.1 only)."),
    version: str | None = typer.Option(None, "--version", "-V", help=_VERSION_HELP),
    nodes: int = typer.Option(1, "--nodes", "-n", min=1, help="How many nodes: 2 or more form a cluster on "
                              "127.0.0.1 (each its own data, logs and ports; heap $KSEARCH_OPENSEARCH_HEAP or 512m each)."),
) -> None:
    """Download/assemble if needed, start the node (or `--nodes N` of them) in the background and print its URL.

    While it runs, `--backend opensearch` (and the app) use it unless KSEARCH_OPENSEARCH_URL says otherwise:
    the URL is recorded in the node's state file, which `stop` removes. A cluster prints (and records) every
    node's URL, comma-separated: ksearch's client spreads requests over them and skips a node that is down."""
    try:
        if nodes > 1:
            if ml or port is not None:
                raise OpenSearchNodeError("--ml and --port are for a single node; a cluster (--nodes) picks free ports")
            node: LocalOpenSearch | LocalCluster = LocalCluster(nodes, version=version)
            url = node.start(timeout=max(timeout, 300.0))
        else:
            if (cluster := recorded_cluster(quiet=True)) is not None and cluster.urls():
                raise OpenSearchNodeError(f"a {cluster.nodes}-node cluster runs from {cluster.cache_dir}: stop it "
                                          "(`ksearch opensearch stop`) first, or use another KSEARCH_CACHE_DIR")
            node = LocalOpenSearch(ml=ml, version=version)
            url = node.start(port=port, timeout=timeout)
    except OpenSearchNodeError as e:
        _fail(e)
    typer.echo(url)
    from retrieval.settings import Settings

    settings = Settings()  # read now: the cached settings of this process may predate the node
    if "opensearch_url" in settings.model_fields_set and settings.opensearch_url.rstrip("/") != url:
        _err.print("note: KSEARCH_OPENSEARCH_URL is set to another node, so --backend opensearch keeps using that one; "
                   "unset it to use this node", highlight=False, markup=False, soft_wrap=True)
    else:
        _err.print(f"--backend opensearch uses it until `ksearch opensearch stop` (recorded in {node.state_file})",
                   highlight=False, markup=False, soft_wrap=True)


@opensearch_app.command()
def stop() -> None:
    """Stop the node (or cluster) started by `ksearch opensearch start`."""
    try:
        cluster = recorded_cluster(quiet=True)
        stopped = cluster.stop() if cluster is not None else False
        stopped = LocalOpenSearch(version=DEFAULT_VERSION).stop() or stopped  # whichever version runs
    except OpenSearchNodeError as e:
        _fail(e)
    typer.echo("stopped" if stopped else "not running")


@opensearch_app.command()
def status() -> None:
    """Print the node's URL, or say it is not running (exit code 1); for a cluster, its URLs, then its health and
    each node (name, HTTP port, transport port, pid, heap; * marks the cluster manager)."""
    cluster = recorded_cluster(quiet=True)
    if cluster is not None:
        _cluster_status(cluster)
        return
    url = LocalOpenSearch(version=DEFAULT_VERSION).status()  # whichever version runs
    if url is None:
        typer.echo("not running")
        raise typer.Exit(1)
    typer.echo(url)


@opensearch_app.command()
def install(
    ml: bool = typer.Option(False, "--ml", help="The installation with ml-commons (what `start --ml` runs)."),
    version: str | None = typer.Option(None, "--version", "-V", help=_VERSION_HELP),
) -> None:
    """Only download and assemble the node (e.g. to warm the cache); print its home."""
    try:
        home = LocalOpenSearch(ml=ml, version=version).ensure_installed()
    except OpenSearchNodeError as e:
        _fail(e)
    typer.echo(str(home))


def _cluster_status(cluster: LocalCluster) -> None:
    url = cluster.status()
    if url is None:
        typer.echo(f"not running (the {cluster.nodes}-node cluster recorded in {cluster.state_file} does not answer)")
        raise typer.Exit(1)
    typer.echo(url)
    health = cluster.health() or {}
    typer.echo(f"cluster {health.get('cluster_name')} (OpenSearch {cluster.version}): {health.get('status')}, "
               f"{health.get('number_of_nodes')} of {cluster.nodes} nodes, {health.get('active_shards')} active shards, "
               f"{health.get('unassigned_shards')} unassigned")
    joined = {row.get("name"): row for row in cluster.cat_nodes()}
    for m in cluster.members_status():
        row = joined.get(m.name)
        state = "joined" if row else ("running, not joined" if m.alive else "down")
        manager = "*" if row and row.get("cluster_manager") == "*" else " "
        heap = f" heap {row.get('heap.percent')}% of {row.get('heap.max')}" if row else ""
        typer.echo(f"{manager} {m.name}  {m.url or '-'}  transport {m.transport_port or '-'}  pid {m.pid or '-'}  "
                   f"{state}{heap}")
