/** Builds RUM report elements in the shape IOS-XE writes them (see shared fixtures/rum). */
export interface RumSpec {
  pid: string;
  serial: string;
  reportId: number;
  tag: string;
  ha?: { pid: string; serial: string; role: string }[];
  measurements: { start: number; end: number; count: number }[];
}

export function rumElement(s: RumSpec): string {
  const payload = {
    version: '2.0',
    asset_identification: {
      report_id: s.reportId,
      asset: { name: 'regid.2018-05.com.cisco.WLC_9500C,1.0_85665885-b865-4e32-8184-5510412fcb54' },
      instance: { sudi: { udi_pid: s.pid, udi_serial_number: s.serial } },
    },
    signature: { signing_type: 'builtin', key: 'k', value: 'EfQw4ng6N90vukN6Gd7GHad8MZClqheuuYlkLO3x334=' },
    meta: {
      entitlement_tag: s.tag,
      utility_enabled: false,
      software_version: '17.09.02',
      ha_udi: (s.ha ?? [{ pid: s.pid, serial: s.serial, role: 'Active' }]).map((u) => ({ role: u.role, sudi: { udi_pid: u.pid, udi_serial_number: u.serial } })),
    },
    measurements: s.measurements.map((m) => ({
      log_time: m.start - 5, // real devices log before the period starts
      metric_name: 'ENTITLEMENT',
      start_time: m.start,
      end_time: m.end,
      sample_interval: m.end - m.start,
      num_samples: 10,
      meta: {},
      value: { type: 'COUNT', value: String(m.count) },
    })),
  };
  const body = {
    payload: JSON.stringify(payload),
    signature: { sudi: { udi_pid: s.pid, udi_serial_number: s.serial }, signing_type: 'builtin', key: 'k', value: 'Tq2qxHTui7/n675clT/uT0Ih1SjIysZbe5LjQ212nCg=' },
  };
  return `<RUMReport>\n<![CDATA[${JSON.stringify(body, null, 2)}]]>\n</RUMReport>`;
}

export const smartLicense = (...elements: string[]) => `<smartLicense>\n${elements.join('\n')}\n</smartLicense>\n`;
