// Chinese map datums in the page: GCJ-02 (Amap, Tencent) and BD-09 (Baidu)
// to and from CGCS2000 (= WGS84 to centimetres). The same formulas as the
// server's gis/datum.py; the inverses iterate the forward map to 1e-10°.
const A = 6378245.0;
const EE = 0.00669342162296594323;
const X_PI = (Math.PI * 3000.0) / 180.0;

export const inChina = (lon, lat) => lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;

function offset(lon, lat) {
  const x = lon - 105.0;
  const y = lat - 35.0;
  const s = Math.sqrt(Math.abs(x));
  let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * s;
  dlat += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  dlat += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  dlat += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320.0 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  let dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * s;
  dlon += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  dlon += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  dlon += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  const radLat = (lat / 180.0) * Math.PI;
  const magic = 1.0 - EE * Math.sin(radLat) ** 2;
  const sqrtMagic = Math.sqrt(magic);
  return [
    (dlon * 180.0) / ((A / sqrtMagic) * Math.cos(radLat) * Math.PI),
    (dlat * 180.0) / (((A * (1.0 - EE)) / (magic * sqrtMagic)) * Math.PI),
  ];
}

export function wgs84ToGcj02([lon, lat]) {
  if (!inChina(lon, lat)) return [lon, lat];
  const [dx, dy] = offset(lon, lat);
  return [lon + dx, lat + dy];
}

export function gcj02ToBd09([lon, lat]) {
  if (!inChina(lon, lat)) return [lon, lat];
  const z = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * X_PI);
  const theta = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * X_PI);
  return [z * Math.cos(theta) + 0.0065, z * Math.sin(theta) + 0.006];
}

function invert(forward, target, start) {
  if (!inChina(target[0], target[1])) return target;
  let [x, y] = start;
  for (let i = 0; i < 30; i++) {
    const [fx, fy] = forward([x, y]);
    const ex = fx - target[0];
    const ey = fy - target[1];
    x -= ex;
    y -= ey;
    if (Math.abs(ex) < 1e-10 && Math.abs(ey) < 1e-10) break;
  }
  return [x, y];
}

export const gcj02ToWgs84 = (p) => invert(wgs84ToGcj02, p, p);
export const bd09ToGcj02 = (p) => invert(gcj02ToBd09, p, [p[0] - 0.0065, p[1] - 0.006]);

/** CGCS2000 → `datum` (cgcs2000 and wgs84: unchanged). */
export function fromCgcs2000(point, datum) {
  if (datum === "gcj02") return wgs84ToGcj02(point);
  if (datum === "bd09") return gcj02ToBd09(wgs84ToGcj02(point));
  return point;
}

/** `datum` → CGCS2000. */
export function toCgcs2000(point, datum) {
  if (datum === "gcj02") return gcj02ToWgs84(point);
  if (datum === "bd09") return gcj02ToWgs84(bd09ToGcj02(point));
  return point;
}

/** A GeoJSON geometry (or Feature/FeatureCollection) with every position mapped. */
export function mapGeometry(value, convert) {
  if (value == null) return value;
  if (value.type === "FeatureCollection") return { ...value, features: value.features.map((f) => mapGeometry(f, convert)) };
  if (value.type === "Feature") return { ...value, geometry: mapGeometry(value.geometry, convert) };
  if (value.type === "GeometryCollection") return { ...value, geometries: value.geometries.map((g) => mapGeometry(g, convert)) };
  const walk = (c) => (typeof c[0] === "number" ? [...convert(c.slice(0, 2)), ...c.slice(2)] : c.map(walk));
  return { ...value, coordinates: walk(value.coordinates) };
}
