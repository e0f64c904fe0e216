#!/usr/bin/python3
"""test_deploy_manifests.py - checks deploy/ (Kubernetes manifests, compose,
nginx, Prometheus, Dockerfile) against what resnetd really serves: the env
names and defaults from `resnetd serve --help` (generated from config.c's key
table), the routes from server/api/routes.c's table, the metric names from
server/core/metrics.c, and config files validated by the real binary.
TestRendered renders deploy/k8s and deploy/k8s-autoscale-queue with the real
`kubectl kustomize` (Debian kubernetes-client) and checks the rendered probe
paths, ports and autoscaling metric names against a real `resnetd serve` on
127.0.0.1 running the ConfigMap's configuration with MODEL.

    /usr/bin/python3 tests/integration/test_deploy_manifests.py RESNETD_BIN MODEL
Needs python3-yaml and kubectl."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import server_harness
from server_harness import clean_env

try:
    import yaml
except ImportError:
    sys.exit("test_deploy_manifests.py: python3-yaml missing (apt-get install python3-yaml)")

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(SRC, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
K8S_QUEUE = os.path.join(DEPLOY, "k8s-autoscale-queue")
RESNETD = None  # set from argv
MODEL = None    # set from argv


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


class Server:
    """What the binary and the sources say the server is."""

    def __init__(self):
        out = subprocess.run([RESNETD, "serve", "--help"], capture_output=True, text=True,
                             check=True, env=clean_env()).stdout
        self.env = set(re.findall(r"env (RESNETD_[A-Z0-9_]+)", out))
        self.keys = {f[2:].replace("-", "_") for f in re.findall(r"^\s+(--[a-z0-9-]+)", out, re.M)}
        self.keys.discard("config")
        self.defaults = dict(re.findall(r"env RESNETD_([A-Z0-9_]+), default (\S+)", out))
        table = read(os.path.join(SRC, "server", "api", "routes.c"))
        self.routes = {}
        for path, methods in re.findall(r'\{"(/[^"]*)",\s*([A-Z_| ]+),', table):
            self.routes[path] = {m.strip() for m in methods.split("|")}
        self.metrics = set(re.findall(r'"(resnetd_[a-z_]+)"', read(os.path.join(SRC, "server", "core", "metrics.c"))))

    def default_int(self, key):
        return int(self.defaults[key.upper()])

    def check_config_file(self, path):
        """Loads path with the real config code: `resnetd healthcheck --config`
        exits 2 on a config error, 1 when nothing answers on the port."""
        r = subprocess.run([RESNETD, "healthcheck", "--config", path, "--port", "1"],
                           capture_output=True, text=True, env=clean_env(), timeout=30)
        return r.returncode, r.stderr.strip()


SERVER = None


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def k8s_objects():
    kust = yaml.safe_load(read(os.path.join(K8S, "kustomization.yaml")))
    objs = {}
    for res in kust["resources"]:
        for doc in load_yaml_docs(os.path.join(K8S, res)):
            objs[doc["kind"]] = doc
    return kust, objs


class TestServerFacts(unittest.TestCase):
    """The facts the other tests rely on were really found (not vacuous)."""

    def test_facts(self):
        self.assertIn("RESNETD_PORT", SERVER.env)
        self.assertIn("RESNETD_DRAIN_TIMEOUT_S", SERVER.env)
        self.assertIn("drain_timeout_s", SERVER.keys)
        self.assertEqual(SERVER.routes.get("/readyz"), {"M_GET"})
        self.assertEqual(SERVER.routes.get("/classify"), {"M_POST"})
        self.assertIn("resnetd_queue_depth", SERVER.metrics)


class TestKubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.kust, cls.objs = k8s_objects()
        dep = cls.objs["Deployment"]
        cls.dep = dep
        cls.pod = dep["spec"]["template"]
        cls.ctr = next(c for c in cls.pod["spec"]["containers"] if c["name"] == "resnetd")
        cls.env = {e["name"]: e for e in cls.ctr.get("env", [])}
        gen = cls.kust["configMapGenerator"][0]
        cls.cm_name = gen["name"]
        cls.cm_file = os.path.join(K8S, gen["files"][0])
        cls.cm = json.loads(read(cls.cm_file))

    def value(self, key):
        """A config key's value in the pod: env beats the config file beats the default."""
        e = self.env.get("RESNETD_" + key.upper())
        if e is not None and "value" in e:
            return e["value"]
        if key in self.cm:
            return self.cm[key]
        return SERVER.defaults[key.upper()].strip('"')

    def port_number(self, port):
        if isinstance(port, int):
            return port
        return next(p["containerPort"] for p in self.ctr["ports"] if p["name"] == port)

    def test_kinds(self):
        for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]:
            self.assertIn(kind, self.objs)

    def test_env_names_exist(self):
        for name in self.env:
            if name.startswith("RESNETD_"):
                self.assertIn(name, SERVER.env | {"RESNETD_CONFIG"}, name)
        # libgomp's spin setting, read at start-up (docs/performance.md)
        self.assertEqual(self.env["GOMP_SPINCOUNT"]["value"], "10000")

    def test_config_file_loads(self):
        self.assertLessEqual(set(self.cm), SERVER.keys)
        rc, err = SERVER.check_config_file(self.cm_file)
        self.assertEqual(rc, 1, err)

    def test_config_file_is_mounted_where_RESNETD_CONFIG_points(self):
        path = self.env["RESNETD_CONFIG"]["value"]
        vol = next(v for v in self.pod["spec"]["volumes"] if v.get("configMap", {}).get("name") == self.cm_name)
        mount = next(m for m in self.ctr["volumeMounts"] if m["name"] == vol["name"])
        self.assertEqual(path, os.path.join(mount["mountPath"], os.path.basename(self.cm_file)))

    def test_ports(self):
        port = int(self.value("port"))
        self.assertEqual(self.port_number("http"), port)
        self.assertEqual(self.value("bind"), "0.0.0.0")
        ann = self.pod["metadata"]["annotations"]
        self.assertEqual(int(ann["prometheus.io/port"]), port)
        self.assertIn(ann["prometheus.io/path"], SERVER.routes)
        self.assertEqual(ann["prometheus.io/path"], "/metrics")

    def test_probes(self):
        want = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
        for probe, path in want.items():
            get = self.ctr[probe]["httpGet"]
            self.assertEqual(get["path"], path, probe)
            self.assertIn("M_GET", SERVER.routes[get["path"]], probe)
            self.assertEqual(self.port_number(get["port"]), int(self.value("port")), probe)

    def test_grace_period_covers_prestop_and_drain(self):
        cmd = self.ctr["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(cmd[0], "sleep")
        drain = int(self.value("drain_timeout_s"))
        grace = self.pod["spec"]["terminationGracePeriodSeconds"]
        self.assertGreaterEqual(grace, int(cmd[1]) + drain, "preStop sleep + drain_timeout_s")

    def test_model_comes_from_the_init_container(self):
        if self.cm.get("model_repository"):  # NAME/VERSION/model.safetensors in the repository
            repo = self.value("model_repository")
            mount = next(m for m in self.ctr["volumeMounts"] if m["mountPath"] == repo)
            init = self.pod["spec"]["initContainers"][0]
            imount = next(m for m in init["volumeMounts"] if m["name"] == mount["name"])
            rel = os.path.relpath(init["command"][-1], imount["mountPath"])
            self.assertRegex(rel, r"^[A-Za-z0-9_.-]+/[1-9][0-9]*/model\.safetensors$")
            return
        model = self.value("model")
        mount = next(m for m in self.ctr["volumeMounts"] if model.startswith(m["mountPath"] + "/"))
        init = self.pod["spec"]["initContainers"][0]
        imount = next(m for m in init["volumeMounts"] if m["name"] == mount["name"])
        dest = init["command"][-1]
        self.assertEqual(dest, os.path.join(imount["mountPath"], os.path.relpath(model, mount["mountPath"])))

    def test_resources_and_threads(self):
        res = self.ctr["resources"]
        for kind in ("requests", "limits"):
            self.assertIn("cpu", res[kind])
            self.assertIn("memory", res[kind])
        threads = self.env["RESNETD_INFERENCE_THREADS"]["valueFrom"]["resourceFieldRef"]
        self.assertEqual(threads["resource"], "limits.cpu")

    def test_non_root_matches_image_user(self):
        uid = int(re.search(r"^USER (\d+)", read(os.path.join(SRC, "Dockerfile")), re.M).group(1))
        sc = self.pod["spec"]["securityContext"]
        self.assertTrue(sc["runAsNonRoot"])
        self.assertEqual(sc["runAsUser"], uid)

    def test_selectors_match(self):
        labels = self.pod["metadata"]["labels"]
        self.assertLessEqual(self.dep["spec"]["selector"]["matchLabels"].items(), labels.items())
        svc = self.objs["Service"]
        self.assertLessEqual(svc["spec"]["selector"].items(), labels.items())
        for p in svc["spec"]["ports"]:
            self.assertEqual(self.port_number(p["targetPort"]), int(self.value("port")))
        pdb = self.objs["PodDisruptionBudget"]
        self.assertLessEqual(pdb["spec"]["selector"]["matchLabels"].items(), labels.items())
        ref = self.objs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
        self.assertEqual((ref["kind"], ref["name"]), ("Deployment", self.dep["metadata"]["name"]))

    def test_adapter_rule_names_a_real_metric(self):
        rules = yaml.safe_load(read(os.path.join(K8S, "prometheus-adapter-rules.yaml")))
        for rule in rules["rules"]["custom"]:
            series = re.match(r"(resnetd_[a-z_]+)", rule["seriesQuery"]).group(1)
            self.assertIn(series, SERVER.metrics)
            self.assertIn(rule["name"]["as"], read(os.path.join(K8S, "hpa.yaml")))


def kustomize(path):
    """The documents `kubectl kustomize path` renders (kustomize's deprecation
    warnings on stderr are allowed; a failure is not)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        raise AssertionError("kubectl missing (apt-get install kubernetes-client)")
    r = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("kubectl kustomize %s: rc %d\n%s" % (path, r.returncode, r.stderr))
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None]


def by_kind(docs):
    return {d["kind"]: d for d in docs}


class LiveServer(server_harness.Server):
    """resnetd serve with the ConfigMap's resnetd.json, on a free loopback port."""

    def __init__(self, config_file):
        flags = ["--config", config_file]
        self.repo = None
        if json.loads(read(config_file)).get("model_repository"):
            # the pod's repository, with the test's model as resnet50 version 1
            self.repo = tempfile.mkdtemp(prefix="resnetd_repo_")
            os.makedirs(os.path.join(self.repo, "resnet50", "1"))
            os.symlink(os.path.abspath(MODEL),
                       os.path.join(self.repo, "resnet50", "1", "model.safetensors"))
            flags += ["--model-repository", self.repo]
        try:
            super().__init__(RESNETD, MODEL, *flags, name="deploy",
                             ready=r"ready: listening on \S*:(\d+)")
        except server_harness.StartError as e:
            raise AssertionError(f"resnetd did not get ready: {e}")

    def get(self, path):
        status, _, body = self.request("GET", path)
        return status, body.decode("utf-8", "replace")

    def post_image(self, path):
        with open(path, "rb") as f:
            data = f.read()
        return self.request("POST", "/classify", data, {"Content-Type": "image/jpeg"},
                            timeout=120)[0]

    def stop(self):
        rc = super().stop()
        self.remove_log()
        if self.repo:
            shutil.rmtree(self.repo, ignore_errors=True)
        return rc


def metric_families(text):
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


class TestRendered(unittest.TestCase):
    """What kubectl really renders, checked against a real server."""

    @classmethod
    def setUpClass(cls):
        if not MODEL:
            raise AssertionError("usage: test_deploy_manifests.py RESNETD_BIN MODEL")
        cls.base = kustomize(K8S)
        cls.queue = kustomize(K8S_QUEUE)
        cls.objs = by_kind(cls.base)
        dep = cls.objs["Deployment"]
        cls.ctr = next(c for c in dep["spec"]["template"]["spec"]["containers"]
                       if c["name"] == "resnetd")
        gen = yaml.safe_load(read(os.path.join(K8S, "kustomization.yaml")))["configMapGenerator"][0]
        cls.cm_file = os.path.join(K8S, gen["files"][0])
        cls.server = LiveServer(cls.cm_file)
        # a classification, so the histograms have observations
        assert cls.server.post_image("/usr/share/darknet/data/dog.jpg") == 200
        status, cls.metrics_text = cls.server.get("/metrics")
        assert status == 200
        cls.families = metric_families(cls.metrics_text)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "server", None):
            cls.server.stop()

    def test_kinds(self):
        for kind in ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
                     "ConfigMap"]:
            self.assertIn(kind, self.objs)
        self.assertEqual(by_kind(self.queue).keys(), self.objs.keys())

    def test_generated_config_map_is_mounted(self):
        cm = self.objs["ConfigMap"]
        vols = self.objs["Deployment"]["spec"]["template"]["spec"]["volumes"]
        names = [v["configMap"]["name"] for v in vols if "configMap" in v]
        self.assertEqual(names, [cm["metadata"]["name"]])
        self.assertEqual(cm["data"][os.path.basename(self.cm_file)], read(self.cm_file))

    def test_probes_answer_on_the_real_server(self):
        ports = {p["name"]: p["containerPort"] for p in self.ctr["ports"]}
        cfg_port = json.loads(read(self.cm_file))["port"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = self.ctr[probe]["httpGet"]
            port = get["port"] if isinstance(get["port"], int) else ports[get["port"]]
            self.assertEqual(port, cfg_port, probe)
            status, _ = self.server.get(get["path"])
            self.assertEqual(status, 200, "%s %s" % (probe, get["path"]))

    def test_service_reaches_the_container_port(self):
        ports = {p["name"]: p["containerPort"] for p in self.ctr["ports"]}
        for p in self.objs["Service"]["spec"]["ports"]:
            target = p["targetPort"]
            self.assertIn(target if isinstance(target, int) else ports.get(target), ports.values())

    def test_scrape_annotations_reach_metrics(self):
        ann = self.objs["Deployment"]["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(int(ann["prometheus.io/port"]), json.loads(read(self.cm_file))["port"])
        status, text = self.server.get(ann["prometheus.io/path"])
        self.assertEqual(status, 200)
        self.assertIn("# TYPE resnetd_", text)

    def test_base_scales_on_cpu(self):
        metrics = self.objs["HorizontalPodAutoscaler"]["spec"]["metrics"]
        self.assertEqual([(m["type"], m["resource"]["name"]) for m in metrics], [("Resource", "cpu")])

    def test_queue_overlay_scales_on_a_served_metric(self):
        hpa = by_kind(self.queue)["HorizontalPodAutoscaler"]
        pods = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        self.assertEqual(len(pods), len(hpa["spec"]["metrics"]), "only pods metrics")
        self.assertTrue(pods)
        rules = yaml.safe_load(read(os.path.join(K8S, "prometheus-adapter-rules.yaml")))
        served = {}
        for rule in rules["rules"]["custom"]:
            series = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", rule["seriesQuery"]).group(1)
            self.assertIn(series, self.families, "adapter rule series %s" % series)
            self.assertRegex(series, rule["name"]["matches"])
            served[rule["name"]["as"]] = series
        for name in pods:
            self.assertIn(name, served, "no adapter rule serves %s" % name)
            self.assertIn(served[name], self.families)
        # the gauge is per pod: one unlabelled sample a Pods metric can average
        self.assertRegex(self.metrics_text, r"(?m)^%s [0-9.e+-]+$" % re.escape(served[pods[0]]))

    def test_queue_overlay_changes_only_the_hpa(self):
        base = {d["kind"]: d for d in self.base}
        for d in self.queue:
            if d["kind"] != "HorizontalPodAutoscaler":
                self.assertEqual(d, base[d["kind"]], d["kind"])


class TestImageAndCompose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dockerfile = read(os.path.join(SRC, "Dockerfile"))
        cls.image_cfg_file = os.path.join(DEPLOY, "container.json")
        cls.image_cfg = json.loads(read(cls.image_cfg_file))
        cls.compose = yaml.safe_load(read(os.path.join(DEPLOY, "compose.yaml")))

    def image_port(self):
        return int(self.image_cfg.get("port", SERVER.default_int("port")))

    def test_image_config(self):
        rc, err = SERVER.check_config_file(self.image_cfg_file)
        self.assertEqual(rc, 1, err)
        self.assertEqual(self.image_cfg["bind"], "0.0.0.0")
        m = re.search(r"^COPY deploy/container.json (\S+)", self.dockerfile, re.M)
        self.assertIn("ENV RESNETD_CONFIG=" + m.group(1), self.dockerfile)

    def test_dockerfile(self):
        self.assertIn("EXPOSE %d" % self.image_port(), self.dockerfile)
        self.assertIn('ENTRYPOINT ["resnetd", "serve"]', self.dockerfile)
        self.assertRegex(self.dockerfile, r'HEALTHCHECK[^\n]*(\\\n[^\n]*)*CMD \["resnetd", "healthcheck"\]')

    def test_compose(self):
        svc = self.compose["services"]
        r = svc["resnetd"]
        for name in r["environment"]:
            self.assertIn(name, SERVER.env)
        model = r["environment"].get("RESNETD_MODEL", self.image_cfg["model"])
        self.assertTrue(any(v.split(":")[1] == os.path.dirname(model) for v in r["volumes"]))
        self.assertIn(str(self.image_port()), [str(p) for p in r["expose"]])
        drain = int(r["environment"].get("RESNETD_DRAIN_TIMEOUT_S", SERVER.default_int("drain_timeout_s")))
        self.assertGreater(int(r["stop_grace_period"].rstrip("s")), drain)
        self.assertIn("./nginx.conf:/etc/nginx/conf.d/default.conf:ro", svc["nginx"]["volumes"])
        self.assertEqual(svc["nginx"]["depends_on"]["resnetd"]["condition"], "service_healthy")
        self.assertIn("./prometheus.yml:/etc/prometheus/prometheus.yml:ro", svc["prometheus"]["volumes"])

    def test_nginx_upstream(self):
        conf = read(os.path.join(DEPLOY, "nginx.conf"))
        hosts = re.findall(r"^\s*server (\S+):(\d+)", conf, re.M)
        self.assertEqual(hosts, [("resnetd", str(self.image_port()))])
        self.assertIn("resnetd", self.compose["services"])
        policy = re.search(r"proxy_next_upstream ([^;]*);", conf).group(1).split()
        for cond in ("error", "http_503", "non_idempotent"):
            self.assertIn(cond, policy)

    def test_prometheus(self):
        prom = yaml.safe_load(read(os.path.join(DEPLOY, "prometheus.yml")))
        job = prom["scrape_configs"][0]
        self.assertIn(job["metrics_path"], SERVER.routes)
        self.assertEqual(job["metrics_path"], "/metrics")
        sd = job["dns_sd_configs"][0]
        self.assertEqual(sd["names"], ["resnetd"])
        self.assertEqual(sd["port"], self.image_port())


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: test_deploy_manifests.py RESNETD_BIN MODEL")
    RESNETD = sys.argv.pop(1)
    if len(sys.argv) >= 2 and not sys.argv[1].startswith("-"):
        MODEL = sys.argv.pop(1)
    SERVER = Server()
    unittest.main(verbosity=2)
