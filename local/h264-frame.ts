/**
 * The smallest honest H.264 picture: an IDR frame of mid-grey at any size, Baseline profile,
 * written bit by bit (ITU-T H.264 7.3). Every macroblock is Intra 16x16 with DC prediction
 * and no residual, so it costs one byte, and a decoder reconstructs 128 everywhere. The
 * simulators repeat it once a second to make a video of exactly the length asked for.
 */

class BitWriter {
  private readonly bytes: number[] = [];
  private current = 0;
  private used = 0;

  bit(b: number): void {
    this.current = (this.current << 1) | (b & 1);
    if (++this.used === 8) {
      this.bytes.push(this.current);
      this.current = 0;
      this.used = 0;
    }
  }

  bits(value: number, count: number): void {
    for (let i = count - 1; i >= 0; i--) this.bit((value >>> i) & 1);
  }

  /** Unsigned Exp-Golomb, ue(v). */
  ue(value: number): void {
    const coded = value + 1;
    const length = 32 - Math.clz32(coded);
    this.bits(0, length - 1);
    this.bits(coded, length);
  }

  /** Signed Exp-Golomb, se(v). */
  se(value: number): void {
    this.ue(value > 0 ? 2 * value - 1 : -2 * value);
  }

  /** rbsp_trailing_bits: a stop bit, then zeros to the byte boundary. */
  trailing(): Buffer {
    this.bit(1);
    while (this.used !== 0) this.bit(0);
    return Buffer.from(this.bytes);
  }
}

/** NAL unit with its header byte and emulation prevention (00 00 0x → 00 00 03 0x). */
function nal(refIdc: number, type: number, rbsp: Buffer): Buffer {
  const out: number[] = [(refIdc << 5) | type];
  let zeros = 0;
  for (const byte of rbsp) {
    if (zeros === 2 && byte <= 3) {
      out.push(3);
      zeros = 0;
    }
    out.push(byte);
    zeros = byte === 0 ? zeros + 1 : 0;
  }
  return Buffer.from(out);
}

export const PROFILE_BASELINE = 66;
/** constraint_set0 and constraint_set1: decodable by Baseline and Main decoders alike. */
export const PROFILE_COMPATIBILITY = 0xc0;
/** Levels by the most macroblocks a frame may have (Table A-1): 3.0 is 720x576, 4.0 is 2048x1024. */
const LEVELS: [maxFrameMbs: number, level: number][] = [[1620, 30], [3600, 31], [5120, 32], [8192, 40], [22080, 50], [36864, 51]];

export interface GreyPicture {
  level: number;
  sps: Buffer;
  pps: Buffer;
  /** One IDR access unit per `idr_pic_id` parity: consecutive IDR pictures must differ in it. */
  idr: [Buffer, Buffer];
}

export function greyPicture(width: number, height: number): GreyPicture {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 16 || height < 16 || width % 2 || height % 2) {
    throw new RangeError(`a picture is at least 16x16 and even in both sides, got ${width}x${height}`);
  }
  const mbWidth = Math.ceil(width / 16);
  const mbHeight = Math.ceil(height / 16);
  const level = LEVELS.find(([most]) => mbWidth * mbHeight <= most)?.[1];
  if (level === undefined) throw new RangeError(`${width}x${height} is over level 5.1`);

  const sps = new BitWriter();
  sps.bits(PROFILE_BASELINE, 8);
  sps.bits(PROFILE_COMPATIBILITY, 8);
  sps.bits(level, 8);
  sps.ue(0); // seq_parameter_set_id
  sps.ue(0); // log2_max_frame_num_minus4
  sps.ue(2); // pic_order_cnt_type 2: output order is decoding order
  sps.ue(1); // max_num_ref_frames
  sps.bit(0); // gaps_in_frame_num_value_allowed_flag
  sps.ue(mbWidth - 1);
  sps.ue(mbHeight - 1);
  sps.bit(1); // frame_mbs_only_flag
  sps.bit(1); // direct_8x8_inference_flag
  const cropRight = (mbWidth * 16 - width) / 2;
  const cropBottom = (mbHeight * 16 - height) / 2;
  if (cropRight || cropBottom) {
    // Cropping is counted in chroma samples: two luma samples in 4:2:0 (7.4.2.1.1).
    sps.bit(1);
    sps.ue(0);
    sps.ue(cropRight);
    sps.ue(0);
    sps.ue(cropBottom);
  } else {
    sps.bit(0);
  }
  sps.bit(0); // vui_parameters_present_flag

  const pps = new BitWriter();
  pps.ue(0); // pic_parameter_set_id
  pps.ue(0); // seq_parameter_set_id
  pps.bit(0); // entropy_coding_mode_flag: CAVLC
  pps.bit(0); // bottom_field_pic_order_in_frame_present_flag
  pps.ue(0); // num_slice_groups_minus1
  pps.ue(0); // num_ref_idx_l0_default_active_minus1
  pps.ue(0); // num_ref_idx_l1_default_active_minus1
  pps.bit(0); // weighted_pred_flag
  pps.bits(0, 2); // weighted_bipred_idc
  pps.se(0); // pic_init_qp_minus26
  pps.se(0); // pic_init_qs_minus26
  pps.se(0); // chroma_qp_index_offset
  pps.bit(0); // deblocking_filter_control_present_flag
  pps.bit(0); // constrained_intra_pred_flag
  pps.bit(0); // redundant_pic_cnt_present_flag

  const idr = (idrPicId: number): Buffer => {
    const slice = new BitWriter();
    slice.ue(0); // first_mb_in_slice
    slice.ue(7); // slice_type: I, and every slice of the picture is I
    slice.ue(0); // pic_parameter_set_id
    slice.bits(0, 4); // frame_num (log2_max_frame_num = 4); 0 in an IDR picture
    slice.ue(idrPicId);
    slice.bit(0); // no_output_of_prior_pics_flag
    slice.bit(0); // long_term_reference_flag
    slice.se(0); // slice_qp_delta
    for (let mb = 0; mb < mbWidth * mbHeight; mb++) {
      slice.ue(3); // mb_type I_16x16_2_0_0: DC prediction, no coded luma or chroma
      slice.ue(0); // intra_chroma_pred_mode: DC
      slice.se(0); // mb_qp_delta
      slice.bit(1); // coeff_token of the Intra16x16 DC block: no coefficients (nC 0)
    }
    return nal(3, 5, slice.trailing());
  };

  return { level, sps: nal(3, 7, sps.trailing()), pps: nal(3, 8, pps.trailing()), idr: [idr(0), idr(1)] };
}
