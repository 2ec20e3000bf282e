#!/usr/bin/env python3
"""Generates the API-misuse table test (issue #9, item 6) from include/nn/nn.h.

For every NN_API function of the header it writes calls with
  - every pointer argument NULL (one at a time, the others valid),
  - every size_t argument 0 and SIZE_MAX (one at a time),
  - every enum argument one below its first and one past its last value,
  - every int argument -1,
plus a baseline call with all arguments valid, and the extra cases of the table below
(the header's "`out` may be NULL when `capacity` is 0" size queries and the like).

Each generated call runs in its own child process and must: not crash, return a status
nn.h documents for the function (NN_OK, a code its comment names, or one the header's
conventions give every function, such as NN_ERR_OUT_OF_MEMORY), fail when the
table says it must (NULL pointers with exactly NN_ERR_NULL_POINTER, out-of-range enums
with exactly NN_ERR_INVALID_ARGUMENT, sizes with any documented failure), leave a fresh,
non-empty nn_last_error_message() when it fails, and leave *out NULL when a constructor
fails. Under the asan preset LeakSanitizer checks each child at exit: no leak.

The generator FAILS (exit 1) when the header has a function the FUNCTIONS table below
does not list, a parameter it has no valid value for, a rule naming a parameter the
function does not have, an expectation whose status the function does not document, or a
function whose comment has no "Threads:" line: a new function or parameter cannot be
forgotten.

It also writes a header with every function's documented statuses (as bit masks), which
tests/hardening/test_alloc_faults.c uses to check the statuses of injected failures.

Usage: gen_misuse.py NN_H OUT_C OUT_STATUSES_H
"""
import re
import sys

# ---------------------------------------------------------------------------------------
# Valid arguments: (type, name) -> C expression, used for every parameter that is not the
# one under test. The fixture (a model, a stream, buffers, option structs, a model file)
# is set up in the generated C before the calls (see PRELUDE).
# ---------------------------------------------------------------------------------------
VALID = {
    ("int *", "out_major"): "&g_int[0]",
    ("int *", "out_minor"): "&g_int[1]",
    ("int *", "out_patch"): "&g_int[2]",
    ("nn_status", "status"): "NN_ERR_SHAPE_MISMATCH",
    ("nn_rng **", "out"): "&g_out_rng",
    ("nn_rng *", "rng"): "g_rng",
    ("uint32_t", "seed"): "1984u",
    ("const uint32_t *", "key"): "g_key",
    ("size_t", "n"): "4",
    ("double *", "out"): "g_big.d",
    ("int64_t *", "out"): "g_big.i64",
    ("double *", "out_x"): "g_big.d",
    ("size_t", "x_capacity"): "BIG_CAP",
    ("int32_t *", "out_labels"): "g_big2.i32",
    ("size_t", "labels_capacity"): "BIG_CAP",
    ("size_t", "points_per_class"): "10",
    ("size_t", "n_classes"): "3",
    ("nn_model_desc *", "desc"): "&g_desc_scratch",
    ("nn_model **", "out"): "&g_out_model",
    ("const nn_model_desc *", "desc"): "&g_desc",
    ("nn_model *", "model"): "g_model",
    ("const nn_model *", "model"): "g_model",
    ("size_t *", "out_count"): "&g_size",
    ("size_t *", "out_sizes"): "g_big.sz",
    ("size_t", "capacity"): "BIG_CAP",
    ("nn_dtype *", "out_dtype"): "&g_dtype",
    ("double *", "out_params"): "g_big.d",
    ("const double *", "params"): "g_params",
    ("size_t", "count"): "g_n_params",
    ("nn_fit_options *", "options"): "&g_fit_scratch",
    ("nn_fit_report *", "report"): "&g_report_scratch",
    ("const void *", "x"): "g_x",
    ("nn_dtype", "x_dtype"): "NN_DTYPE_FLOAT64",
    ("size_t", "rows"): "ROWS",
    ("size_t", "cols"): "2",
    ("const void *", "targets"): "g_labels",
    ("nn_target_type", "target_type"): "NN_TARGET_CLASS_INDEX",
    ("size_t", "target_cols"): "1",
    ("const nn_fit_options *", "options"): "&g_fit",
    ("nn_fit_report *", "out_report"): "&g_report",
    ("nn_loss_record *", "out"): "g_big.rec",
    ("nn_epoch_record *", "out"): "g_big.ep",
    ("nn_parallel", "kind"): "NN_PARALLEL_MPI",
    ("int *", "out_rank"): "&g_int[0]",
    ("int *", "out_size"): "&g_int[1]",
    ("nn_output", "what"): "NN_OUTPUT_SCORES",
    ("void *", "out"): "g_big.bytes",
    ("nn_dtype", "out_dtype"): "NN_DTYPE_FLOAT64",
    ("size_t", "out_capacity"): "BIG_CAP",
    ("int32_t *", "out_classes"): "g_big.i32",
    ("double *", "out_loss"): "&g_double[0]",
    ("double *", "out_accuracy"): "&g_double[1]",
    ("nn_save_options *", "options"): "&g_save_scratch",
    ("const char *", "path"): "g_path",
    ("const nn_save_options *", "options"): "&g_save",
    ("size_t *", "out_size"): "&g_size",
    ("const void *", "data"): "g_image",
    ("size_t", "size"): "g_image_size",
    ("const char *", "key"): '"k"',
    ("const char *", "value"): '"v"',
    ("char *", "out"): "g_big.chars",
    ("size_t *", "out_length"): "&g_size",
    ("nn_device_info *", "info"): "&g_info_scratch",
    ("nn_device_info *", "out_info"): "&g_info",
    ("size_t", "i"): "0",
    ("nn_device_kind", "kind"): "NN_DEVICE_REFERENCE",
    ("int", "index"): "0",
    ("nn_precision", "precision"): "NN_PRECISION_STRICT",
    ("nn_precision *", "out_precision"): "&g_precision",
}

# ---------------------------------------------------------------------------------------
# Every function of the header, with what differs from the default rules:
#   NULL pointer -> exactly NN_ERR_NULL_POINTER (void functions: must not crash)
#   size_t 0 / SIZE_MAX -> some documented failure
#   enum out of range -> exactly NN_ERR_INVALID_ARGUMENT (string functions: a string)
#   int -1 -> some documented failure
# Keys of a rule: null / zero / max / enum / neg: {param: outcome}; extra: list of
# (description, {param: C expression}, outcome); baseline: outcome of the all-valid call.
# Outcomes: "ok" (must be NN_OK), "fail" (a documented failure), "any" (NN_OK or a documented
# failure), "NN_ERR_..." (exactly that), "string" (a non-NULL string), "unknown" (the
# string "unknown status"), "nocrash" (void functions).
# ---------------------------------------------------------------------------------------
SIZE_QUERY = "`out` may be NULL when `capacity` is 0 (a size query)"
FUNCTIONS = {
    "nn_version": {"null": {"out_major": "nocrash", "out_minor": "nocrash", "out_patch": "nocrash"},
                   "why": "Any out pointer may be NULL."},
    "nn_version_string": {"baseline": "string"},
    "nn_status_string": {"baseline": "string", "enum": {"status": "unknown"},
                         "why": "unknown codes give \"unknown status\"."},
    "nn_last_error_message": {"baseline": "string"},
    "nn_rng_create": {},
    "nn_rng_destroy": {"null": {"rng": "nocrash"}, "skip_baseline": True,
                       "why": "NULL is a no-op; destroying the fixture's stream is not a misuse."},
    "nn_rng_seed": {},
    "nn_rng_seed_array": {"zero": {"n": "NN_ERR_INVALID_ARGUMENT"}},
    "nn_rng_randn": {"zero": {"n": "ok"},
                     "extra": [("out = NULL, n = 0", {"out": "NULL", "n": "0"}, "ok")],
                     "why": "`out` may be NULL with n = 0."},
    "nn_rng_rand": {"zero": {"n": "ok"},
                    "extra": [("out = NULL, n = 0", {"out": "NULL", "n": "0"}, "ok")]},
    "nn_rng_permutation": {"zero": {"n": "ok"},
                           "extra": [("out = NULL, n = 0", {"out": "NULL", "n": "0"}, "ok")]},
    "nn_dataset_spiral": {"null": {"rng": "ok"}, "max": {"x_capacity": "ok", "labels_capacity": "ok"},
                          "zero": {"x_capacity": "NN_ERR_BUFFER_TOO_SMALL", "labels_capacity": "NN_ERR_BUFFER_TOO_SMALL",
                                   "points_per_class": "NN_ERR_INVALID_ARGUMENT", "n_classes": "NN_ERR_INVALID_ARGUMENT"},
                          "why": "rng NULL draws from a private stream; a capacity above the need is fine."},
    "nn_model_desc_init": {"null": {"desc": "nocrash"}},
    "nn_create": {},
    "nn_destroy": {"null": {"model": "nocrash"}, "skip_baseline": True},
    "nn_model_layer_count": {},
    "nn_model_layer_sizes": {"zero": {"capacity": "NN_ERR_BUFFER_TOO_SMALL"}, "max": {"capacity": "ok"}},
    "nn_model_dtype": {},
    "nn_param_count": {},
    "nn_get_params": {"zero": {"capacity": "NN_ERR_BUFFER_TOO_SMALL"}, "max": {"capacity": "ok"}},
    "nn_set_params": {"zero": {"count": "NN_ERR_SHAPE_MISMATCH"}, "max": {"count": "NN_ERR_SHAPE_MISMATCH"}},
    "nn_fit_options_init": {"null": {"options": "nocrash"}},
    "nn_fit_report_init": {"null": {"report": "nocrash"}},
    "nn_fit": {"null": {"options": "ok", "out_report": "ok"},
               "zero": {"rows": "NN_ERR_INVALID_ARGUMENT", "cols": "NN_ERR_SHAPE_MISMATCH",
                        "target_cols": "NN_ERR_SHAPE_MISMATCH"},
               "max": {"cols": "NN_ERR_SHAPE_MISMATCH", "target_cols": "NN_ERR_SHAPE_MISMATCH"},
               "why": "options NULL: the defaults; out_report NULL: no report."},
    "nn_get_loss_history": {"zero": {"capacity": "ok"}, "max": {"capacity": "ok"},
                            "extra": [("out = NULL, capacity = 0", {"out": "NULL", "capacity": "0"}, "ok")],
                            "why": SIZE_QUERY},
    "nn_get_epoch_losses": {"zero": {"capacity": "ok"}, "max": {"capacity": "ok"},
                            "extra": [("out = NULL, capacity = 0", {"out": "NULL", "capacity": "0"}, "ok")],
                            "why": SIZE_QUERY},
    "nn_get_epoch_history": {"zero": {"capacity": "ok"}, "max": {"capacity": "ok"},
                             "extra": [("out = NULL, capacity = 0", {"out": "NULL", "capacity": "0"}, "ok")],
                             "why": SIZE_QUERY},
    "nn_reset_history": {},
    "nn_reset_optimizer": {},
    "nn_parallel_info": {"baseline": "any", "null": {"out_rank": "any", "out_size": "any"},
                         "why": "Any out pointer may be NULL; without mpirun the call fails with NN_ERR_COMM."},
    "nn_predict": {"zero": {"rows": "NN_ERR_INVALID_ARGUMENT", "cols": "NN_ERR_SHAPE_MISMATCH",
                            "out_capacity": "NN_ERR_BUFFER_TOO_SMALL"},
                   "max": {"cols": "NN_ERR_SHAPE_MISMATCH", "out_capacity": "ok"}},
    "nn_predict_classes": {"zero": {"rows": "NN_ERR_INVALID_ARGUMENT", "cols": "NN_ERR_SHAPE_MISMATCH",
                                    "out_capacity": "NN_ERR_BUFFER_TOO_SMALL"},
                           "max": {"cols": "NN_ERR_SHAPE_MISMATCH", "out_capacity": "ok"}},
    "nn_evaluate": {"null": {"out_loss": "ok", "out_accuracy": "ok"},
                    "zero": {"rows": "NN_ERR_INVALID_ARGUMENT", "cols": "NN_ERR_SHAPE_MISMATCH",
                             "target_cols": "NN_ERR_SHAPE_MISMATCH"},
                    "max": {"cols": "NN_ERR_SHAPE_MISMATCH", "target_cols": "NN_ERR_SHAPE_MISMATCH"},
                    "extra": [("out_loss = out_accuracy = NULL", {"out_loss": "NULL", "out_accuracy": "NULL"},
                               "NN_ERR_NULL_POINTER")],
                    "why": "Either out pointer may be NULL, not both."},
    "nn_save_options_init": {"null": {"options": "nocrash"}},
    "nn_save": {"null": {"options": "ok"}},
    "nn_save_to_buffer": {"null": {"out": "ok", "options": "ok"},
                          "zero": {"capacity": "NN_ERR_BUFFER_TOO_SMALL"}, "max": {"capacity": "ok"},
                          "why": "out NULL stores the size only; options NULL: the defaults."},
    "nn_load": {},
    "nn_load_from_buffer": {},
    "nn_set_metadata": {"null": {"value": "ok"}, "why": "A NULL value removes the key."},
    "nn_get_metadata": {"null": {"out": "ok"}, "zero": {"capacity": "NN_ERR_BUFFER_TOO_SMALL"},
                        "max": {"capacity": "ok"}, "why": "With out NULL only the length is stored."},
    "nn_device_info_init": {"null": {"info": "nocrash"}},
    "nn_device_count": {},
    "nn_device_get": {"zero": {"i": "ok"}, "max": {"i": "NN_ERR_INVALID_ARGUMENT"}, "why": "Entry 0 is the reference."},
    "nn_set_device": {"neg": {"index": "NN_ERR_INVALID_ARGUMENT"}},
    "nn_get_device": {},
    "nn_set_precision": {},
    "nn_get_precision": {},
}

STATUS_BITS = {}  # NN_OK / NN_ERR_* -> value, parsed from the header


class GenError(Exception):
    pass


def parse_enums(src):
    enums = {}
    for m in re.finditer(r"typedef\s+enum\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", src, re.S):
        body = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.S)
        values = {}
        for item in body.split(","):
            item = item.strip()
            if not item:
                continue
            km = re.match(r"(\w+)\s*=\s*(.+)$", item, re.S)
            if not km:
                raise GenError("enum %s: cannot read %r" % (m.group(3), item))
            name, expr = km.group(1), km.group(2).strip()
            if name.endswith("FORCE_INT32_"):
                continue
            values[name] = int(expr, 0)
        enums[m.group(3)] = values
    return enums


def parse_functions(src):
    # Drop preprocessor lines (the NN_API definitions themselves).
    body = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith("#"))
    decl = re.compile(r"(/\*\*(?:(?!\*/).)*?\*/)?\s*NN_API\s+([^;(]*?)\b(nn_\w+)\s*\(([^)]*)\)\s*;", re.S)
    funcs = []
    for m in decl.finditer(body):
        doc = m.group(1) or ""
        ret = " ".join(m.group(2).split())
        name = m.group(3)
        params = []
        plist = " ".join(m.group(4).split())
        if plist != "void":
            for p in plist.split(","):
                p = p.strip()
                pm = re.match(r"(.*?)(\w+)$", p)
                if not pm:
                    raise GenError("%s: cannot read parameter %r" % (name, p))
                ptype = " ".join(pm.group(1).replace("*", " * ").split()).replace("* *", "**")
                ptype = re.sub(r"\s+\*", " *", ptype).replace("* *", "**")
                params.append((ptype, pm.group(2)))
        funcs.append({"name": name, "ret": ret, "params": params, "doc": doc})
    if len({f["name"] for f in funcs}) != len(funcs):
        raise GenError("a function is declared twice")
    return funcs


CONVENTION_CODES = set()  # codes the header's "Conventions that hold for every function" name


def parse_conventions(src):
    """Status codes the header's conventions apply to every function (e.g. "Any call that
    allocates may return ::NN_ERR_OUT_OF_MEMORY")."""
    m = re.search(r"/\*(?:(?!\*/).)*Conventions that hold for every function(?:(?!\*/).)*\*/", src, re.S)
    if not m:
        raise GenError("nn.h has no comment with \"Conventions that hold for every function\"")
    return set(re.findall(r"::(NN_ERR_\w+)", m.group(0)))


def documented(funcs_by_name, name, seen=None):
    """Statuses a function's comment names: every ::NN_* code in it, those of the function
    it refers to with "as ::nn_x", minus "without ..." exclusions, plus those the header's
    conventions give every function."""
    seen = seen or set()
    if name in seen:
        raise GenError("circular 'as ::%s' in the documentation" % name)
    seen.add(name)
    doc = funcs_by_name[name]["doc"]
    text = " ".join(doc.split())
    codes = set()
    m = re.search(r"@return\s+as\s+::(nn_\w+)", text)
    if m:
        codes |= documented(funcs_by_name, m.group(1), seen)
    for w in re.finditer(r"without\s+((?:::NN_\w+(?:\s*(?:,|and|or)\s*)?)+)", text):
        for c in re.findall(r"NN_\w+", w.group(1)):
            codes.discard(c)
    if re.search(r"without the hyperparameter codes", text):
        codes.discard("NN_ERR_BAD_HYPERPARAMETER")
    # the codes named in this comment (not those named only as "without ...")
    without = set()
    for w in re.finditer(r"without\s+((?:::NN_\w+(?:\s*(?:,|and|or)\s*)?)+)", text):
        without |= set(re.findall(r"NN_\w+", w.group(1)))
    for c in re.findall(r"::(NN_(?:OK|ERR_\w+))", text):
        if c not in without:
            codes.add(c)
    codes.add("NN_OK")
    codes |= CONVENTION_CODES
    unknown = codes - set(STATUS_BITS)
    if unknown:
        raise GenError("%s documents unknown statuses %s" % (name, sorted(unknown)))
    return codes


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    nn_h, out_c, out_h = argv[1:]
    src = open(nn_h, encoding="utf-8").read()
    enums = parse_enums(src)
    if "nn_status" not in enums:
        raise GenError("no nn_status enum in %s" % nn_h)
    STATUS_BITS.update(enums["nn_status"])
    CONVENTION_CODES.update(parse_conventions(src))
    funcs = parse_functions(src)
    by_name = {f["name"]: f for f in funcs}
    errors = []

    missing = [f["name"] for f in funcs if f["name"] not in FUNCTIONS]
    for n in missing:
        errors.append("%s is in nn.h but not in FUNCTIONS of %s: add its rules (which pointers may be NULL, which "
                      "sizes may be 0 or SIZE_MAX, its extra cases)" % (n, sys.argv[0]))
    stale = [n for n in FUNCTIONS if n not in by_name]
    for n in stale:
        print("gen_misuse.py: note: %s is in FUNCTIONS but not in this nn.h (not generated)" % n, file=sys.stderr)

    cases = []  # (function, description, call expression, outcome, kind of function)
    docs = {}
    for f in funcs:
        name = f["name"]
        if name in missing:
            continue
        rule = FUNCTIONS[name]
        pnames = [p[1] for p in f["params"]]
        for key in ("null", "zero", "max", "enum", "neg"):
            for p in rule.get(key, {}):
                if p not in pnames:
                    errors.append("%s: the rule '%s' names %s, which is not a parameter" % (name, key, p))
        for desc, over, _ in rule.get("extra", []):
            for p in over:
                if p not in pnames:
                    errors.append("%s: extra case '%s' names %s, which is not a parameter" % (name, desc, p))
        if "Threads:" not in f["doc"]:
            errors.append("%s: its comment in nn.h has no \"Threads:\" line (issue #9: every function documents "
                          "its thread-safety)" % name)
        kind = "status" if f["ret"] == "nn_status" else "void" if f["ret"] == "void" else \
            "string" if f["ret"] == "const char *" else None
        if kind is None:
            errors.append("%s returns %s, which the generator does not know how to check" % (name, f["ret"]))
            continue
        doc = documented(by_name, name) if kind == "status" else {"NN_OK"}
        docs[name] = doc
        valid = {}
        for ptype, pname in f["params"]:
            v = rule.get("valid", {}).get(pname) or VALID.get((ptype, pname))
            if v is None:
                errors.append("%s: no valid value for parameter '%s %s': add it to VALID" % (name, ptype, pname))
            valid[pname] = v
        if any(v is None for v in valid.values()):
            continue

        def call(over):
            args = [over.get(pn, valid[pn]) for _, pn in f["params"]]
            return "%s(%s)" % (name, ", ".join(args))

        def add(desc, over, outcome):
            if kind == "void" and outcome not in ("nocrash",):
                errors.append("%s: %s: a void function can only be checked for not crashing" % (name, desc))
            if kind == "string" and outcome not in ("string", "unknown"):
                errors.append("%s: %s: a string function returns a string" % (name, desc))
            if outcome.startswith("NN_") and outcome not in doc:
                errors.append("%s: %s expects %s, which nn.h does not document for it (documented: %s)"
                              % (name, desc, outcome, ", ".join(sorted(doc))))
            if outcome == "fail" and len(doc) < 2:
                errors.append("%s: %s must fail, but nn.h documents no failure for it" % (name, desc))
            cases.append((name, desc, call(over), outcome, kind))

        default_ok = {"status": "ok", "void": "nocrash", "string": "string"}[kind]
        if not rule.get("skip_baseline"):
            add("all arguments valid", {}, rule.get("baseline", default_ok))
        for ptype, pname in f["params"]:
            if "*" in ptype:
                default = {"status": "NN_ERR_NULL_POINTER", "void": "nocrash", "string": "string"}[kind]
                add("%s = NULL" % pname, {pname: "NULL"}, rule.get("null", {}).get(pname, default))
            elif ptype == "size_t":
                add("%s = 0" % pname, {pname: "0"}, rule.get("zero", {}).get(pname, "fail"))
                add("%s = SIZE_MAX" % pname, {pname: "SIZE_MAX"}, rule.get("max", {}).get(pname, "fail"))
            elif ptype in enums:
                vals = enums[ptype].values()
                default = {"status": "NN_ERR_INVALID_ARGUMENT", "string": "string"}.get(kind, "nocrash")
                outcome = rule.get("enum", {}).get(pname, default)
                add("%s = %d (below its first value)" % (pname, min(vals) - 1),
                    {pname: "(%s)(%d)" % (ptype, min(vals) - 1)}, outcome)
                add("%s = %d (past its last value)" % (pname, max(vals) + 1),
                    {pname: "(%s)(%d)" % (ptype, max(vals) + 1)}, outcome)
            elif ptype == "int":
                add("%s = -1" % pname, {pname: "-1"}, rule.get("neg", {}).get(pname, "fail"))
            elif ptype in ("uint32_t", "double", "int32_t", "uint64_t"):
                pass  # every value is valid
            else:
                errors.append("%s: parameter '%s %s' has a type the generator has no rule for" % (name, ptype, pname))
        for desc, over, outcome in rule.get("extra", []):
            add(desc, over, outcome)

    if errors:
        for e in errors:
            print("gen_misuse.py: error: " + e, file=sys.stderr)
        return 1

    write_c(out_c, nn_h, cases, docs)
    write_statuses_h(out_h, nn_h, docs)
    print("gen_misuse.py: %d functions, %d calls -> %s" % (len(docs), len(cases), out_c))
    return 0


def mask(codes):
    bits = 0
    for c in codes:
        v = STATUS_BITS[c]
        if not 0 <= v < 64:
            raise GenError("status %s = %d does not fit a 64-bit mask" % (c, v))
        bits |= 1 << v
    return bits


def write_statuses_h(path, nn_h, docs):
    with open(path, "w", encoding="utf-8") as out:
        out.write("/* Generated by tests/hardening/gen_misuse.py from %s: the statuses each function's\n"
                  " * comment documents, bit s set for status s. Do not edit. */\n" % nn_h.split("/")[-1])
        out.write("#ifndef NN_API_STATUSES_H\n#define NN_API_STATUSES_H\n#include <stdint.h>\n#include <string.h>\n")
        out.write("typedef struct nn_api_statuses { const char *function; uint64_t documented; } nn_api_statuses;\n")
        out.write("static const nn_api_statuses nn_api_status_table[] = {\n")
        for name in sorted(docs):
            out.write("    {%s, UINT64_C(0x%x)},\n" % (c_string(name), mask(docs[name])))
        out.write("};\n")
        out.write("/* Non-zero if nn.h documents `status` for `function` (unknown functions: 0). */\n")
        out.write("static int nn_api_documents(const char *function, int status)\n{\n"
                  "    size_t i;\n"
                  "    if (status < 0 || status > 63) return 0;\n"
                  "    for (i = 0; i < sizeof nn_api_status_table / sizeof nn_api_status_table[0]; ++i)\n"
                  "        if (strcmp(nn_api_status_table[i].function, function) == 0)\n"
                  "            return (int)((nn_api_status_table[i].documented >> status) & 1u);\n"
                  "    return 0;\n}\n#endif\n")


PRELUDE = r'''
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nn/nn.h>

#define ROWS 30
#define BIG_CAP 65536
/* Room for BIG_CAP elements of the largest record (nn_epoch_record, 32 bytes). */
typedef union big_buffer {
    unsigned char bytes[BIG_CAP * 32];
    char chars[BIG_CAP * 32];
    double d[BIG_CAP * 4];
    int64_t i64[BIG_CAP * 4];
    int32_t i32[BIG_CAP * 8];
    size_t sz[BIG_CAP * 4];
    nn_loss_record rec[BIG_CAP];
    nn_epoch_record ep[BIG_CAP];
} big_buffer;

static big_buffer g_big, g_big2;
static nn_model *g_model, *g_out_model;
static nn_rng *g_rng, *g_out_rng;
static nn_model_desc g_desc, g_desc_scratch;
static const size_t g_sizes[] = {2, 6, 3};
static nn_fit_options g_fit, g_fit_scratch;
static nn_fit_report g_report, g_report_scratch;
static nn_save_options g_save, g_save_scratch;
static nn_device_info g_info, g_info_scratch;
static double g_x[ROWS * 2];
static int32_t g_labels[ROWS];
static double *g_params;
static size_t g_n_params;
static unsigned char *g_image;
static size_t g_image_size;
static char g_dir[64], g_path[128];
static const uint32_t g_key[4] = {1, 2, 3, 4};
static int g_int[3];
static double g_double[2];
static size_t g_size;
static nn_precision g_precision;
static nn_dtype g_dtype;

/* A handle value that is not NULL, to see that a failed constructor writes NULL. */
static int g_sentinel_object;
#define SENTINEL_MODEL ((nn_model *)(void *)&g_sentinel_object)
#define SENTINEL_RNG ((nn_rng *)(void *)&g_sentinel_object)

#define SETUP_OK(call)                                                                   \
    do {                                                                                 \
        nn_status s_ = (call);                                                           \
        if (s_ != NN_OK) {                                                               \
            fprintf(stderr, "setup: %s returned %d: %s\n", #call, (int)s_, nn_last_error_message()); \
            exit(2);                                                                     \
        }                                                                                \
    } while (0)

static void setup(void)
{
    size_t i;
    FILE *f;
    SETUP_OK(nn_dataset_spiral(g_x, ROWS * 2, g_labels, ROWS, ROWS / 3, 3, NULL, 1984));
    nn_model_desc_init(&g_desc);
    g_desc.layer_sizes = g_sizes;
    g_desc.n_layer_sizes = 3;
    SETUP_OK(nn_create(&g_model, &g_desc));
    /* The reference device: children of this process never need OpenBLAS's threads. */
    SETUP_OK(nn_set_device(g_model, NN_DEVICE_REFERENCE, 0));
    nn_fit_options_init(&g_fit);
    g_fit.epochs = 1;
    g_fit.batch_size = 10;
    g_fit.learning_rate = 0.1;
    g_fit.report_interval = 1;
    nn_fit_report_init(&g_report);
    nn_save_options_init(&g_save);
    nn_device_info_init(&g_info);
    SETUP_OK(nn_fit(g_model, g_x, NN_DTYPE_FLOAT64, ROWS, 2, g_labels, NN_TARGET_CLASS_INDEX, 1, &g_fit, NULL));
    SETUP_OK(nn_set_metadata(g_model, "k", "v"));
    SETUP_OK(nn_param_count(g_model, &g_n_params));
    g_params = malloc(g_n_params * sizeof(double));
    if (!g_params) exit(2);
    SETUP_OK(nn_get_params(g_model, g_params, g_n_params));
    SETUP_OK(nn_save_to_buffer(g_model, NULL, 0, &g_image_size, NULL));
    g_image = malloc(g_image_size);
    if (!g_image) exit(2);
    SETUP_OK(nn_save_to_buffer(g_model, g_image, g_image_size, &g_image_size, NULL));
    SETUP_OK(nn_rng_create(&g_rng, 7));
    snprintf(g_dir, sizeof g_dir, "/tmp/nn_misuse_XXXXXX");
    if (!mkdtemp(g_dir)) exit(2);
    snprintf(g_path, sizeof g_path, "%s/model.nnm", g_dir);
    f = fopen(g_path, "wb");
    if (!f || fwrite(g_image, 1, g_image_size, f) != g_image_size || fclose(f) != 0) exit(2);
    for (i = 0; i < sizeof g_int / sizeof g_int[0]; ++i) g_int[i] = 0;
}

static void teardown(void)
{
    nn_destroy(g_model);
    nn_rng_destroy(g_rng);
    free(g_params);
    free(g_image);
    remove(g_path);
    rmdir(g_dir);
}

/* A known message on this thread, to tell a fresh one from a stale one: a device index no
 * case uses. */
static char g_marker[512];
static void mark_error(void)
{
    nn_device_info info;
    nn_device_info_init(&info);
    (void)nn_device_get((size_t)-12345, &info);
    snprintf(g_marker, sizeof g_marker, "%s", nn_last_error_message());
}

typedef enum outcome { O_OK, O_FAIL, O_ANY, O_EXACT, O_STRING, O_UNKNOWN, O_NOCRASH } outcome;

typedef struct misuse_case {
    const char *function;
    const char *what;
    outcome expect;
    nn_status exact;
    uint64_t documented;
} misuse_case;

static const char *status_name(nn_status s) { return nn_status_string(s); }

/* Checks a status against the case; prints why not and returns 1 on a mismatch. */
static int check_status(const misuse_case *c, nn_status s)
{
    const char *msg = nn_last_error_message();
    const int documented = (int)s >= 0 && (int)s < 64 && ((c->documented >> (int)s) & 1u);
    int bad = 0;
    if (!documented) {
        printf("FAIL  %s, %s: status %d (%s) is not one nn.h documents for it\n", c->function, c->what, (int)s,
               status_name(s));
        bad = 1;
    }
    switch (c->expect) {
    case O_OK:
        if (s != NN_OK) {
            printf("FAIL  %s, %s: expected NN_OK, got %d (%s): %s\n", c->function, c->what, (int)s, status_name(s), msg);
            bad = 1;
        }
        break;
    case O_FAIL:
        if (s == NN_OK) {
            printf("FAIL  %s, %s: expected a failure, got NN_OK\n", c->function, c->what);
            bad = 1;
        }
        break;
    case O_EXACT:
        if (s != c->exact) {
            printf("FAIL  %s, %s: expected %s, got %d (%s): %s\n", c->function, c->what, status_name(c->exact), (int)s,
                   status_name(s), msg);
            bad = 1;
        }
        break;
    default: break;
    }
    if (s != NN_OK && (!msg || !msg[0] || strcmp(msg, g_marker) == 0)) {
        printf("FAIL  %s, %s: failed with %d but left no fresh message (\"%s\")\n", c->function, c->what, (int)s,
               msg ? msg : "(null)");
        bad = 1;
    }
    return bad;
}

static int check_string(const misuse_case *c, const char *s)
{
    if (!s) {
        printf("FAIL  %s, %s: returned NULL\n", c->function, c->what);
        return 1;
    }
    if (c->expect == O_UNKNOWN && strcmp(s, "unknown status") != 0) {
        printf("FAIL  %s, %s: returned \"%s\", not \"unknown status\"\n", c->function, c->what, s);
        return 1;
    }
    return 0;
}

/* After a call: a failed constructor must leave *out NULL; a made handle is destroyed. */
static int check_outs(const misuse_case *c, nn_status s)
{
    int bad = 0;
    if (s != NN_OK && g_out_model != NULL && g_out_model != SENTINEL_MODEL) {
        printf("FAIL  %s, %s: failed but wrote a model to *out\n", c->function, c->what);
        bad = 1;
    }
    if (s != NN_OK && g_out_model == SENTINEL_MODEL && strstr(c->what, "out = NULL") == NULL &&
        (strcmp(c->function, "nn_create") == 0 || strcmp(c->function, "nn_load") == 0 ||
         strcmp(c->function, "nn_load_from_buffer") == 0)) {
        printf("FAIL  %s, %s: failed without setting *out to NULL\n", c->function, c->what);
        bad = 1;
    }
    if (g_out_model != SENTINEL_MODEL) nn_destroy(g_out_model);
    if (g_out_rng != SENTINEL_RNG) nn_rng_destroy(g_out_rng);
    g_out_model = SENTINEL_MODEL;
    g_out_rng = SENTINEL_RNG;
    return bad;
}
'''

MAIN = r'''
static int run_case(size_t i)
{
    const misuse_case *c = &g_cases[i];
    g_out_model = SENTINEL_MODEL;
    g_out_rng = SENTINEL_RNG;
    mark_error();
    switch (i) {
%s
    }
    return 1;
}

int main(int argc, char **argv)
{
    const size_t n = sizeof g_cases / sizeof g_cases[0];
    size_t i, failed = 0, crashed = 0;
    const int no_fork = argc > 1 && strcmp(argv[1], "--no-fork") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    setup();
    printf("API-misuse table from nn.h: %%zu calls over %%d functions\n", n, %d);
    for (i = 0; i < n; ++i) {
        int st = 0;
        pid_t pid;
        if (no_fork) {
            if (run_case(i) != 0) ++failed;
            continue;
        }
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            /* exit (not _exit): LeakSanitizer checks this call's leaks at exit and
             * makes the status non-zero (1) when it finds one */
            int bad = run_case(i);
            exit(bad ? 3 : 0);
        }
        if (waitpid(pid, &st, 0) != pid) {
            perror("waitpid");
            return 2;
        }
        if (WIFSIGNALED(st)) {
            printf("FAIL  %%s, %%s: CRASHED (signal %%d)\n", g_cases[i].function, g_cases[i].what, WTERMSIG(st));
            ++crashed;
            ++failed;
        } else if (WEXITSTATUS(st) != 0) {
            if (WEXITSTATUS(st) != 3) /* 3: run_case printed what failed */
                printf("FAIL  %%s, %%s: exit status %%d (a sanitizer report above: an error or a leak)\n",
                       g_cases[i].function, g_cases[i].what, WEXITSTATUS(st));
            ++failed;
        }
    }
    teardown();
    printf("misuse: %%zu calls, %%zu passed, %%zu failed (%%zu crashed)\n", n, n - failed, failed, crashed);
    return failed == 0 ? 0 : 1;
}
'''


def write_c(path, nn_h, cases, docs):
    enum_of = {"ok": "O_OK", "fail": "O_FAIL", "any": "O_ANY", "string": "O_STRING", "unknown": "O_UNKNOWN",
               "nocrash": "O_NOCRASH"}
    lines = ["/* Generated by tests/hardening/gen_misuse.py from %s. Do not edit: change the" % nn_h.split("/")[-1],
             " * header or the generator's table. %d calls over %d functions. */" % (len(cases), len(docs))]
    out = "\n".join(lines) + PRELUDE
    out += "\nstatic const misuse_case g_cases[] = {\n"
    for fn, desc, _, outcome, _ in cases:
        if outcome.startswith("NN_"):
            e, exact = "O_EXACT", outcome
        else:
            e, exact = enum_of[outcome], "NN_OK"
        out += "    {%s, %s, %s, %s, UINT64_C(0x%x)},\n" % (c_string(fn), c_string(desc), e, exact, mask(docs[fn]))
    out += "};\n"
    body = []
    for i, (fn, desc, call, outcome, kind) in enumerate(cases):
        body.append("    case %d: /* %s: %s */" % (i, fn, desc))
        if kind == "status":
            body.append("    {\n        const nn_status s = %s;\n        const int bad = check_status(c, s);"
                        "\n        return check_outs(c, s) | bad;\n    }" % call)
        elif kind == "void":
            body.append("        %s;\n        return check_outs(c, NN_OK);" % call)
        else:
            body.append("        return check_string(c, %s) | check_outs(c, NN_OK);" % call)
    out += MAIN % ("\n".join(body), len(docs))
    with open(path, "w", encoding="utf-8") as f:
        f.write(out)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except GenError as e:
        print("gen_misuse.py: error: %s" % e, file=sys.stderr)
        sys.exit(1)
