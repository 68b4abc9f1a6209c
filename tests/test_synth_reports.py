"""Vendor synthesis: a clear error without the tools; report parsing from documented formats."""

import json
import shutil

import pytest

from qapflow.common.tools import ToolNotFound
from qapflow.synth.vendor import parse_vendor_reports, run_vendor_synth

CSYNTH_XML = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2023.2</Version></ReportVersion>
  <UserAssignments>
    <unit>ns</unit><ProductFamily>virtexuplus</ProductFamily><Part>xcu250-figd2104-2L-e</Part>
    <TopModelName>qapflow_net</TopModelName><TargetClockPeriod>5.00</TargetClockPeriod>
    <ClockUncertainty>1.35</ClockUncertainty><FlowTarget>vivado</FlowTarget>
  </UserAssignments>
  <PerformanceEstimates>
    <PipelineType>dataflow</PipelineType>
    <SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>3.422</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <unit>clock cycles</unit>
      <Best-caseLatency>9</Best-caseLatency><Average-caseLatency>9</Average-caseLatency>
      <Worst-caseLatency>9</Worst-caseLatency>
      <Best-caseRealTimeLatency>45.000 ns</Best-caseRealTimeLatency>
      <Worst-caseRealTimeLatency>45.000 ns</Worst-caseRealTimeLatency>
      <Interval-min>1</Interval-min><Interval-max>1</Interval-max>
    </SummaryOfOverallLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>0</BRAM_18K><DSP>3</DSP><FF>2514</FF><LUT>18321</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>5376</BRAM_18K><DSP>12288</DSP><FF>3456000</FF><LUT>1728000</LUT><URAM>1280</URAM></AvailableResources>
  </AreaEstimates>
</profile>
"""

HLS_APP = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="com.autoesl.autopilot.project" name="qapflow_net_prj" top="qapflow_net">
  <solutions xmlns=""><solution name="solution1" status="active"/></solutions>
</project>
"""

VIVADO_RPT = """1. CLB Logic
------------
+----------------------------+-------+-------+-----------+-------+
|          Site Type         |  Used | Fixed | Available | Util% |
+----------------------------+-------+-------+-----------+-------+
| CLB LUTs*                  | 15234 |     0 |   1728000 |  0.88 |
| CLB Registers              |  2401 |     0 |   3456000 |  0.07 |
+----------------------------+-------+-------+-----------+-------+
2. BLOCKRAM
-----------
| Block RAM Tile    |    0 |     0 |      2688 |  0.00 |
| URAM              |    0 |     0 |      1280 |  0.00 |
3. ARITHMETIC
-------------
| DSPs           |    2 |     0 |     12288 |  0.02 |
"""


def fake_project(root):
    root.mkdir()
    (root / "qapflow_project.json").write_text(json.dumps({"stage": "compile"}))
    (root / "project.tcl").write_text('variable project_name\nset project_name "qapflow_net"\n'
                                      'variable backend\nset backend "vitis"\n')
    report_dir = root / "qapflow_net_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    (root / "qapflow_net_prj" / "hls.app").write_text(HLS_APP)
    (report_dir / "qapflow_net_csynth.xml").write_text(CSYNTH_XML)
    return root


def test_csynth_and_vivado_reports_are_parsed(tmp_path):
    prj = fake_project(tmp_path / "prj")
    (prj / "vivado_synth.rpt").write_text(VIVADO_RPT)
    r = parse_vendor_reports(prj)
    assert r["latency_cycles"] == {"best": 9.0, "worst": 9.0}
    assert r["latency_ns"]["worst"] == pytest.approx(9 * 3.422)
    assert r["initiation_interval"] == {"min": 1.0, "max": 1.0}
    assert r["resources"] == {"LUT": 18321.0, "FF": 2514.0, "DSP": 3.0, "BRAM_18K": 0.0, "URAM": 0.0}
    assert r["vivado_synth"]["LUT"] == 15234.0 and r["vivado_synth"]["DSP"] == 2.0


def test_missing_report_is_a_clear_error(tmp_path):
    prj = fake_project(tmp_path / "prj")
    (prj / "qapflow_net_prj" / "solution1" / "syn" / "report" / "qapflow_net_csynth.xml").unlink()
    with pytest.raises(Exception, match="no C-synthesis report"):
        parse_vendor_reports(prj)


@pytest.mark.skipif(shutil.which("vitis_hls") is not None, reason="the vendor tool is installed here")
def test_synth_without_vendor_tools_says_tool_not_found(tmp_path):
    prj = fake_project(tmp_path / "prj")
    with pytest.raises(ToolNotFound, match="vitis_hls not found on PATH.*cannot be installed here"):
        run_vendor_synth(prj, "vitis")
