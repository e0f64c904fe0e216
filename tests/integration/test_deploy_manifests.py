#!/usr/bin/python3
"""test_deploy_manifests.py - checks deploy/ (Kubernetes manifests, compose,
nginx, Prometheus, Dockerfile) against what resnetd really serves: the env
names and defaults from `resnetd serve --help` (generated from config.c's key
table), the routes from server/api/routes.c's table, the metric names from
server/core/metrics.c, and config files validated by the real binary.

    /usr/bin/python3 tests/integration/test_deploy_manifests.py RESNETD_BIN
Needs python3-yaml."""
import json
import os
import re
import subprocess
import sys
import unittest

try:
    import yaml
except ImportError:
    sys.exit("test_deploy_manifests.py: python3-yaml missing (apt-get install python3-yaml)")

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(SRC, "deploy")
K8S = os.path.join(DEPLOY, "k8s")
RESNETD = None  # set from argv


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("RESNETD_")}


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
        sys.exit("usage: test_deploy_manifests.py RESNETD_BIN")
    RESNETD = sys.argv.pop(1)
    SERVER = Server()
    unittest.main(verbosity=2)
