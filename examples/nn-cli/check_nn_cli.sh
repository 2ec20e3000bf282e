#!/bin/sh
# ctest example.nn-cli.CASE: sh check_nn_cli.sh CASE NN_CLI WORK_DIR SKLEARN_DATA_DIR
#
# CASE is one of
#   iris     iris (scikit-learn's copy) trains to >= 0.9 held-out accuracy; evaluate on the
#            held-out rows prints the same accuracy; predict on them without the label
#            column (columns reordered) writes one label string per row, agreeing with it;
#            --label by index, float64 and the reference device give the same kind of run
#   digits   scikit-learn's 8x8 digits reach >= 0.95 held-out accuracy
#   bad-csv  each unusable CSV exits 2 with a message naming its line; missing files exit 1
#            with the OS reason; a libnn failure prints libnn's message
#   regress  a synthetic regression reaches a held-out MSE below a bound
#   usage    --help of every command, unknown commands and options, --optimizer other than
#            sgd, and a CSV with CRLF line ends, blank lines and quoted labels
# Exits 0 on success, 77 (ctest: skipped) when the scikit-learn data files are absent.
set -u
[ $# -eq 4 ] || { echo "usage: $0 CASE NN_CLI WORK_DIR SKLEARN_DATA_DIR" >&2; exit 1; }
case_name=$1 cli=$2 work=$3 data=$4

rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

fail() { echo "FAIL ($case_name): $*" >&2; exit 1; }

# run RC NAME ARGS...: runs nn-cli ARGS with stdout in NAME.out and stderr in NAME.err and
# fails unless it exits with RC.
run() {
    want=$1 name=$2
    shift 2
    "$cli" "$@" >"$name.out" 2>"$name.err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        cat "$name.out" "$name.err" >&2
        fail "nn-cli $* exited $got, expected $want"
    fi
}

# contains NAME.err|NAME.out TEXT: fails unless the file contains TEXT (fixed string).
contains() {
    grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "$1 does not contain '$2'"; }
}

# at_least X BOUND / below X BOUND: numeric comparisons.
at_least() { awk -v x="$1" -v b="$2" 'BEGIN { exit !(x + 0 >= b + 0) }'; }
below() { awk -v x="$1" -v b="$2" 'BEGIN { exit !(x + 0 < b + 0) }'; }

# value FILE WORDS: the number after "WORDS " in FILE ("holdout accuracy 0.96 (30 rows)").
value() { sed -n "s/^$2 \\([^ ]*\\).*/\\1/p" "$1" | head -n 1; }

now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

need_data() {
    [ -r "$data/$1" ] || { echo "SKIP: $data/$1 not found (Debian: python3-sklearn)"; exit 77; }
}

# drop_column FILE NAME: FILE without column NAME, remaining columns in reverse order
# (predict matches columns by name, so the order must not matter). Plain CSV only.
drop_column() {
    awk -F, -v drop="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == drop) d = i }
        { s = ""; for (i = NF; i >= 1; i--) if (i != d) s = s (s == "" ? "" : ",") $i; print s }' "$1"
}

# column FILE NAME: the values of column NAME, without the header.
column() {
    awk -F, -v want="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == want) c = i; next }
        { print $c }' "$1"
}

# check_holdout NAME MODEL HOLD.csv LABEL: evaluate on the held-out rows prints train's
# holdout accuracy; predict on them without the label writes one matching label a row.
check_holdout() {
    train_acc=$(value "$1.out" "holdout accuracy")
    run 0 "$1-evaluate" evaluate "$2" "$3"
    eval_acc=$(value "$1-evaluate.out" "accuracy")
    [ -n "$eval_acc" ] && [ "$eval_acc" = "$train_acc" ] ||
        fail "evaluate says accuracy '$eval_acc', train's holdout said '$train_acc'"
    drop_column "$3" "$4" >"$1-nolabel.csv"
    run 0 "$1-predict" predict "$2" "$1-nolabel.csv"
    run 0 "$1-predict-file" predict "$2" "$1-nolabel.csv" --out "$1-pred.csv"
    cmp -s "$1-predict.out" "$1-pred.csv" || fail "predict --out differs from predict's stdout"
    rows=$(($(wc -l <"$3") - 1))
    lines=$(wc -l <"$1-predict.out")
    [ "$lines" -eq $((rows + 1)) ] || fail "predict wrote $lines lines for $rows rows (+ header)"
    [ "$(head -n 1 "$1-predict.out")" = "$4" ] || fail "predict's header is not '$4'"
    column "$3" "$4" >"$1-truth.txt"
    tail -n +2 "$1-predict.out" >"$1-predicted.txt"
    agree=$(paste -d, "$1-truth.txt" "$1-predicted.txt" |
            awk -F, '$1 == $2 { n++ } END { printf "%.6f", n / NR }')
    [ "$agree" = "$train_acc" ] || fail "predict's labels agree on $agree of the rows, train said $train_acc"
}

case $case_name in
iris)
    need_data iris.csv
    # scikit-learn's iris.csv starts "150,4,setosa,versicolor,virginica": rows, features,
    # then the class names; each row is 4 numbers and a class index.
    head -n 1 "$data/iris.csv" | grep -qE '^150,4,setosa,versicolor,virginica' ||
        fail "$data/iris.csv: unexpected first line: $(head -n 1 "$data/iris.csv")"
    awk -F, 'NR == 1 { for (i = 3; i <= NF; i++) name[i - 3] = $i
                       print "sepal_length,sepal_width,petal_length,petal_width,species"; next }
             { print $1 "," $2 "," $3 "," $4 "," name[$5] }' "$data/iris.csv" >iris.csv
    [ "$(wc -l <iris.csv)" -eq 151 ] || fail "iris.csv should have 150 rows"
    settings="--holdout 0.2 --hidden 16 --epochs 100 --batch 16 --lr 0.05 --seed 1"
    start=$(now)
    # shellcheck disable=SC2086
    run 0 train train iris.csv --label species $settings --out iris.nnm --save-holdout hold.csv
    echo "iris: $(grep accuracy train.out | tr '\n' ' ')($(seconds_since "$start") s)"
    epochs=$(grep -c '^epoch [0-9]*/100 loss ' train.out)
    [ "$epochs" -eq 100 ] || fail "expected 100 'epoch N/100 loss X' lines when piped, got $epochs"
    acc=$(value train.out "holdout accuracy")
    at_least "$acc" 0.9 || fail "iris held-out accuracy $acc < 0.9"
    check_holdout train iris.nnm hold.csv species
    grep -qvE '^(species|setosa|versicolor|virginica)$' train-predict.out &&
        fail "predict wrote something other than iris's label strings"
    # The label by its 0-based index: the same run.
    # shellcheck disable=SC2086
    run 0 by-index train iris.csv --label 4 $settings --out by-index.nnm
    [ "$(value by-index.out "holdout accuracy")" = "$acc" ] || fail "--label 4 trained differently from --label species"
    # float64 on the reference device.
    # shellcheck disable=SC2086
    run 0 ref64 train iris.csv --label species $settings --dtype float64 --device reference --out ref64.nnm
    contains ref64.out "on reference"
    at_least "$(value ref64.out "holdout accuracy")" 0.9 || fail "float64/reference: accuracy below 0.9"
    ;;
digits)
    need_data digits.csv.gz
    # 1797 rows of 64 pixel counts and the digit, no header.
    gzip -dc "$data/digits.csv.gz" >digits-raw.csv || fail "cannot decompress digits.csv.gz"
    awk -F, 'NR == 1 { if (NF != 65) exit 1; h = ""; for (i = 0; i < 64; i++) h = h "p" i ","
                       print h "digit" } { print }' digits-raw.csv >digits.csv ||
        fail "digits.csv.gz: expected 65 columns"
    start=$(now)
    run 0 train train digits.csv --label digit --holdout 0.2 --hidden 64 --activation relu \
        --epochs 30 --batch 32 --lr 0.05 --seed 1 --out digits.nnm --save-holdout hold.csv
    echo "digits: $(grep accuracy train.out | tr '\n' ' ')($(seconds_since "$start") s)"
    acc=$(value train.out "holdout accuracy")
    at_least "$acc" 0.95 || fail "digits held-out accuracy $acc < 0.95"
    check_holdout train digits.nnm hold.csv digit
    ;;
bad-csv)
    printf 'a,b,y\n1,2,x\n3,4,z\n5,6,x\n7,8,z\n' >good.csv
    printf 'a,b,y\n1,2,x\n3,4\n5,6,z\n' >ragged.csv
    printf 'a,b,y\n1,2,x\n3,4,z\n5,abc,x\n' >nonnumeric.csv
    printf 'a,b,y\n1,2,x\n\n3,,z\n' >emptycell.csv
    : >empty.csv
    printf 'a,b,y\n' >header-only.csv
    run 2 ragged train ragged.csv --label y --out m.nnm
    contains ragged.err "line 3"
    run 2 nonnumeric train nonnumeric.csv --label y --out m.nnm
    contains nonnumeric.err "line 4"
    contains nonnumeric.err "'abc'"
    run 2 emptycell train emptycell.csv --label y --out m.nnm
    contains emptycell.err "line 4"
    run 2 empty train empty.csv --label y --out m.nnm
    contains empty.err "line 1"
    run 2 header-only train header-only.csv --label y --out m.nnm
    contains header-only.err "line 2"
    run 2 unknown-label train good.csv --label nope --out m.nnm
    contains unknown-label.err "line 1"
    contains unknown-label.err "'nope'"
    run 2 label-index train good.csv --label 3 --out m.nnm
    contains label-index.err "line 1"
    contains label-index.err "out of range"
    [ ! -e m.nnm ] || fail "a failed train wrote a model"
    run 1 missing train no-such.csv --label y --out m.nnm
    contains missing.err "No such file or directory"
    # A libnn failure: a learning rate a float32 model cannot hold.
    run 1 libnn-error train good.csv --label y --lr 1e300 --epochs 1 --out m.nnm
    contains libnn-error.err "nn_fit failed"
    # predict and evaluate on bad CSVs.
    run 0 good train good.csv --label y --epochs 2 --out good.nnm
    run 2 predict-nonnumeric predict good.nnm nonnumeric.csv
    contains predict-nonnumeric.err "line 4"
    printf 'a,y\n1,x\n' >no-b.csv
    run 2 predict-missing-column predict good.nnm no-b.csv
    contains predict-missing-column.err "line 1"
    contains predict-missing-column.err "'b'"
    printf 'a,b\n1,2\n' >no-label.csv
    run 2 evaluate-no-label evaluate good.nnm no-label.csv
    contains evaluate-no-label.err "line 1"
    run 2 predict-ragged predict good.nnm ragged.csv
    contains predict-ragged.err "line 3"
    run 1 predict-missing-model predict no-such.nnm good.csv
    contains predict-missing-model.err "nn_load failed"
    run 1 predict-missing-data predict good.nnm no-such.csv
    contains predict-missing-data.err "No such file or directory"
    ;;
regress)
    # y = 2 x1 - x2 + x3^2 + 0.5 sin(3 x1) + uniform noise in [-0.05, 0.05] (variance
    # 0.00083), label in the middle column; the net should get the MSE near the noise.
    awk 'BEGIN { srand(7); print "x1,x2,y,x3"
                 for (i = 0; i < 600; i++) {
                     x1 = 2 * rand() - 1; x2 = 2 * rand() - 1; x3 = 2 * rand() - 1
                     y = 2 * x1 - x2 + x3 * x3 + 0.5 * sin(3 * x1) + 0.1 * (rand() - 0.5)
                     printf "%.6f,%.6f,%.6f,%.6f\n", x1, x2, y, x3 } }' >synthetic.csv
    start=$(now)
    run 0 train train synthetic.csv --task regress --label 2 --holdout 0.25 --hidden 32 \
        --activation tanh --epochs 200 --batch 16 --lr 0.05 --seed 3 --out reg.nnm --save-holdout hold.csv
    mse=$(value train.out "holdout mse")
    echo "regress: holdout mse $mse ($(seconds_since "$start") s)"
    below "$mse" 0.02 || fail "held-out MSE $mse is not below 0.02 (label variance about 2)"
    run 0 evaluate evaluate reg.nnm hold.csv
    [ "$(value evaluate.out mse)" = "$mse" ] || fail "evaluate's mse $(value evaluate.out mse) != train's $mse"
    drop_column hold.csv y >nolabel.csv
    run 0 predict predict reg.nnm nolabel.csv
    [ "$(wc -l <predict.out)" -eq 151 ] || fail "predict should write a header and 150 values"
    tail -n +2 predict.out | grep -qvE '^-?[0-9.]+(e[-+][0-9]+)?$' && fail "predict wrote a non-number"
    ;;
usage)
    for cmd in train predict evaluate; do
        run 0 "help-$cmd" "$cmd" --help
        contains "help-$cmd.out" "usage: nn-cli $cmd"
    done
    run 0 help --help
    run 1 unknown-command frobnicate
    run 1 unknown-option train x.csv --label y --out m.nnm --frob 1
    run 1 no-label train x.csv --out m.nnm
    run 1 optimizer train x.csv --label y --out m.nnm --optimizer adam
    contains optimizer.err "sgd"
    run 1 bad-activation train x.csv --label y --out m.nnm --activation swish
    # CRLF line ends, blank lines, spaces around cells, quoted labels with commas and quotes.
    printf 'f1,f2,"kind, of"\r\n0.1, 0.2,"a, b"\r\n\r\n0.9,0.8,"say ""hi"""\r\n0.2,0.1,"a, b"\r\n0.8,0.9,"say ""hi"""\r\n' >quoted.csv
    run 0 quoted train quoted.csv --label "kind, of" --hidden 4 --epochs 200 --batch 2 --lr 0.1 --out q.nnm
    run 0 quoted-predict predict q.nnm quoted.csv
    contains quoted-predict.out '"kind, of"'
    contains quoted-predict.out '"a, b"'
    contains quoted-predict.out '"say ""hi"""'
    run 0 quoted-evaluate evaluate q.nnm quoted.csv
    contains quoted-evaluate.out "accuracy 1.000000 (4 rows)"
    ;;
*)
    fail "unknown case '$case_name'"
    ;;
esac
echo "PASS ($case_name)"
