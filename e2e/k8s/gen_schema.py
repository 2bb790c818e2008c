# Generates charts/entrypoint/values.schema.json (kept in python so the
# repeated pieces stay consistent; the JSON is what helm reads).
import json, sys

DUR = {"type": "string", "pattern": r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$",
       "description": "a Go duration such as 30s, 1m30s or 500ms"}
def dur(desc): return dict(DUR, description=desc + " (Go duration: 30s, 1m30s, 500ms)")
STR = {"type": "string"}
BOOL = {"type": "boolean"}
ARGV = {"type": "array", "items": {"type": "string"}, "description": "argv: a list of strings"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 15,
        "description": "an IANA port name: lowercase letters, digits and '-', at most 15 characters"}
OBJ = {"type": "object"}
def obj(props, required=(), desc=None, extra=False):
    o = {"type": "object", "properties": props, "additionalProperties": extra}
    if required: o["required"] = list(required)
    if desc: o["description"] = desc
    return o
IMAGE = obj({"repository": {"type": "string", "minLength": 1}, "tag": STR,
             "digest": {"type": "string", "pattern": "^(|sha256:[a-f0-9]{64})$"},
             "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}})
LISTENER = obj({"name": NAME, "port": PORT, "servicePort": PORT,
                "nodePort": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
                "service": BOOL}, required=["name", "port"],
               desc="a socket entrypoint binds: {name, port, servicePort, nodePort, service}")
READINESS = obj({"type": {"enum": ["auto", "notify", "listen", "http", "tcp", "exec", "delay", "none"]},
                 "address": STR, "command": ARGV, "delay": {"anyOf": [{"const": ""}, DUR]},
                 "timeout": {"anyOf": [{"const": ""}, DUR]}},
                desc="the gate a new generation passes before the old one is stopped")
TAKEOVER = {"enum": ["auto", "on", "off"],
            "description": "bind takeover: the app's own bind() of a listened port gets the owned socket (auto: when the kernel allows it; on: fail at start otherwise; off)"}
SIGNAL = {"type": "string", "pattern": "^(SIG)?[A-Z0-9+]+$|^[0-9]+$", "description": "a signal: SIGTERM, TERM or 15"}
# The chart-wide stop signal may be empty: entrypoint's default (SIGTERM, or
# the graceful stop of a server it knows).
SIGNAL_OR_DEFAULT = {"type": "string", "pattern": "^$|^(SIG)?[A-Z0-9+]+$|^[0-9]+$",
                     "description": "a signal (SIGTERM, TERM or 15), or empty for entrypoint's default"}
APPNAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
           "description": "an app name: lowercase letters, digits and '-' (a metrics label and a CLI argument)"}
APP = obj({"name": APPNAME, "command": dict(ARGV, minItems=1),
           "env": {"type": "object", "additionalProperties": {"type": "string"}},
           "listeners": {"type": "array", "items": LISTENER}, "readiness": READINESS,
           "takeover": TAKEOVER, "watch": ARGV, "validate": ARGV, "drainTimeout": dur("drain timeout of this app"),
           "stopSignal": SIGNAL, "restart": obj({"policy": {"enum": ["exit", "restart"]}}, extra=True),
           "onChange": {"type": "string", "pattern": "^(swap|restart|signal:[A-Z0-9]+)$"}},
          required=["name", "command"], desc="one app entrypoint runs")
PROBE = obj({"enabled": BOOL, "path": {"type": "string", "pattern": "^/"},
             "periodSeconds": {"type": "integer", "minimum": 1},
             "timeoutSeconds": {"type": "integer", "minimum": 1},
             "failureThreshold": {"type": "integer", "minimum": 1},
             "successThreshold": {"type": "integer", "minimum": 1}})
INTSTR = {"type": ["integer", "string", "null"], "description": "a count or a percentage such as 50%"}

schema = {
 "$schema": "http://json-schema.org/draft-07/schema#",
 "title": "entrypoint chart values",
 "type": "object",
 "additionalProperties": False,
 "properties": {
  "global": OBJ,
  "mode": {"enum": ["image", "initContainer"],
           "description": "image: the app image contains entrypoint; initContainer: an init container copies it in"},
  "image": IMAGE,
  "imagePullSecrets": {"type": "array", "items": OBJ},
  "nameOverride": STR, "fullnameOverride": STR,
  "entrypoint": obj({"path": {"type": "string", "pattern": "^/"}, "image": IMAGE,
                     "installDir": {"type": "string", "pattern": "^/"},
                     "installCommand": dict(ARGV, minItems=1), "healthPort": PORT,
                     "logFormat": {"enum": ["text", "json"]},
                     "logLevel": {"enum": ["debug", "info", "warn", "error"]},
                     "signalTarget": {"enum": ["group", "child"]}, "extraArgs": ARGV}),
  "appName": APPNAME,
  "command": ARGV,
  "listeners": {"type": "array", "items": LISTENER},
  "readiness": READINESS,
  "takeover": TAKEOVER,
  "termination": obj({"drainTimeout": dur("how long a stopped generation may drain"),
                      "preStopDelay": dur("how long the pod serves after it was told to stop"),
                      "preStop": {"enum": ["auto", "sleep", "entrypoint", "none"]},
                      "stopSignal": SIGNAL_OR_DEFAULT,
                      "graceMarginSeconds": {"type": "integer", "minimum": 0}}),
  "restartPolicy": {"enum": ["exit", "restart"]},
  "config": obj({"files": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "file name -> content (strings)"},
                 "existingConfigMap": STR, "mountPath": {"type": "string", "pattern": "^/"},
                 "watch": BOOL, "validate": ARGV,
                 "onChange": {"type": "string", "pattern": "^(swap|restart|signal:[A-Z0-9]+)$"},
                 "debounce": dur("burst of changes collapsed into one")}),
  "apps": {"type": "array", "items": APP},
  "env": {"type": "array", "items": OBJ}, "envFrom": {"type": "array", "items": OBJ},
  "admin": obj({"enabled": BOOL, "existingSecret": STR,
                "secretKey": {"type": "string", "minLength": 1}, "token": STR}),
  "service": obj({"enabled": BOOL, "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                  "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                  "metricsPort": BOOL}),
  "metrics": obj({"serviceMonitor": obj({"enabled": BOOL, "interval": DUR,
                                         "scrapeTimeout": {"anyOf": [{"const": ""}, DUR]},
                                         "labels": {"type": "object", "additionalProperties": {"type": "string"}}})}),
  "podDisruptionBudget": obj({"enabled": BOOL, "minAvailable": INTSTR, "maxUnavailable": INTSTR}),
  "replicaCount": {"type": "integer", "minimum": 0},
  "probes": obj({"startup": PROBE, "readiness": PROBE, "liveness": PROBE}),
  "resources": OBJ, "initResources": OBJ,
  "podSecurityContext": OBJ, "securityContext": OBJ,
  "tmpDir": obj({"enabled": BOOL, "sizeLimit": {"type": ["string", "integer"]}}),
  "serviceAccount": obj({"create": BOOL, "name": STR,
                         "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                         "automountToken": BOOL}),
  "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
  "podLabels": {"type": "object", "additionalProperties": {"type": "string"}},
  "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
  "tolerations": {"type": "array"}, "affinity": OBJ, "topologySpreadConstraints": {"type": "array"},
  "priorityClassName": STR,
  "extraVolumes": {"type": "array", "items": OBJ}, "extraVolumeMounts": {"type": "array", "items": OBJ},
  "tests": obj({"enabled": BOOL, "image": obj({"repository": STR, "tag": STR, "digest": STR,
                 "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}}), "command": ARGV}),
 },
}
json.dump(schema, open(sys.argv[1], "w"), indent=2, ensure_ascii=False)
open(sys.argv[1], "a").write("\n")
