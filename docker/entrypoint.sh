#!/usr/bin/env bash
# Put the mounted vendor tools on PATH, then run the given command.
set -euo pipefail
found=0
for settings in "${XILINX_ROOT}"/Vitis_HLS/*/settings64.sh "${XILINX_ROOT}"/Vitis/*/settings64.sh \
                "${XILINX_ROOT}"/Vivado/*/settings64.sh; do
    if [ -f "$settings" ]; then
        # shellcheck disable=SC1090
        source "$settings"
        found=1
    fi
done
if [ "$found" = 0 ]; then
    echo "qapflow-entrypoint: no Vitis/Vivado settings64.sh under ${XILINX_ROOT}; vendor steps" \
         "(qapflow synth, qapflow csim --vendor-csim) will report 'tool not found'." >&2
fi
exec "$@"
