/* The layout of every struct of remodel.h as this C compiler lays it out, for
 * tests/test_python.py to hold the Python binding's ctypes mirrors (python/remodel/_capi.py)
 * to: one line per struct, "NAME SIZE FIELD=OFFSET ...". */
#include <remodel.h>

#include <stddef.h>
#include <stdio.h>

#define S(T) printf("\n%s %zu", #T, sizeof(T))
#define F(T, f) printf(" %s=%zu", #f, offsetof(T, f))

int main(void)
{
    S(rm_error); F(rm_error, code); F(rm_error, fix); F(rm_error, msg);
    S(rm_tensor); F(rm_tensor, dtype); F(rm_tensor, rank); F(rm_tensor, dims); F(rm_tensor, numel);
    F(rm_tensor, data); F(rm_tensor, owned);
    S(rm_load_options); F(rm_load_options, max_memory);
    S(rm_save_options); F(rm_save_options, external_data); F(rm_save_options, external_threshold);
    S(rm_value_info); F(rm_value_info, name); F(rm_value_info, dtype); F(rm_value_info, rank);
    F(rm_value_info, dims); F(rm_value_info, dim_names);
    S(rm_opset); F(rm_opset, domain); F(rm_opset, version);
    S(rm_op_count); F(rm_op_count, op); F(rm_op_count, count);
    S(rm_info); F(rm_info, file_bytes); F(rm_info, ir_version); F(rm_info, producer_name);
    F(rm_info, producer_version); F(rm_info, n_opsets); F(rm_info, opsets); F(rm_info, n_inputs);
    F(rm_info, inputs); F(rm_info, n_outputs); F(rm_info, outputs); F(rm_info, n_nodes); F(rm_info, n_ops);
    F(rm_info, ops); F(rm_info, n_initializers); F(rm_info, params); F(rm_info, param_bytes); F(rm_info, macs);
    S(rm_finding); F(rm_finding, kind); F(rm_finding, node); F(rm_finding, text);
    S(rm_findings); F(rm_findings, n); F(rm_findings, cap); F(rm_findings, v); F(rm_findings, oom);
    S(rm_arg); F(rm_arg, key); F(rm_arg, type); F(rm_arg, n); F(rm_arg, i); F(rm_arg, f); F(rm_arg, s);
    F(rm_arg, positional); F(rm_arg, in_repr); F(rm_arg, scalar_repr);
    S(rm_module_info); F(rm_module_info, path); F(rm_module_info, name); F(rm_module_info, type);
    F(rm_module_info, type_known); F(rm_module_info, leaf); F(rm_module_info, bn_folded); F(rm_module_info, depth);
    F(rm_module_info, parent); F(rm_module_info, n_children); F(rm_module_info, n_nodes);
    F(rm_module_info, n_args); F(rm_module_info, n_params); F(rm_module_info, source);
    F(rm_module_info, qualname);
    S(rm_replace_options); F(rm_replace_options, init); F(rm_replace_options, seed); F(rm_replace_options, propagate);
    S(rm_calib_options); F(rm_calib_options, inputs); F(rm_calib_options, samples); F(rm_calib_options, seed);
    F(rm_calib_options, threads);
    S(rm_prune_ratio); F(rm_prune_ratio, path); F(rm_prune_ratio, ratio);
    S(rm_prune_options); F(rm_prune_options, ratio); F(rm_prune_options, channels); F(rm_prune_options, n_channels);
    F(rm_prune_options, criterion); F(rm_prune_options, global); F(rm_prune_options, target_macs);
    F(rm_prune_options, target_params); F(rm_prune_options, ignore); F(rm_prune_options, n_ignore);
    F(rm_prune_options, ratio_for); F(rm_prune_options, n_ratio_for); F(rm_prune_options, round_to);
    F(rm_prune_options, dry_run); F(rm_prune_options, reconstruct); F(rm_prune_options, ridge);
    F(rm_prune_options, max_rows); F(rm_prune_options, calib);
    S(rm_prune_group); F(rm_prune_group, name); F(rm_prune_group, producers); F(rm_prune_group, before);
    F(rm_prune_group, after); F(rm_prune_group, prunable); F(rm_prune_group, reason); F(rm_prune_group, ignored);
    F(rm_prune_group, considered);
    S(rm_prune_refit); F(rm_prune_refit, name); F(rm_prune_refit, rows); F(rm_prune_refit, unknowns);
    F(rm_prune_refit, error_before); F(rm_prune_refit, error_after);
    S(rm_prune_report); F(rm_prune_report, n_groups); F(rm_prune_report, groups);
    F(rm_prune_report, params_before); F(rm_prune_report, params_after); F(rm_prune_report, macs_before);
    F(rm_prune_report, macs_after); F(rm_prune_report, dry_run); F(rm_prune_report, samples);
    F(rm_prune_report, n_refits); F(rm_prune_report, refits);
    S(rm_session_options); F(rm_session_options, threads); F(rm_session_options, fuse);
    F(rm_session_options, direct_conv); F(rm_session_options, max_memory); F(rm_session_options, n_given); F(rm_session_options, given_names);
    F(rm_session_options, given_values); F(rm_session_options, few_runs);
    S(rm_input_set); F(rm_input_set, n); F(rm_input_set, names); F(rm_input_set, values);
    S(rm_diff_options); F(rm_diff_options, atol); F(rm_diff_options, atol_scale); F(rm_diff_options, rtol);
    F(rm_diff_options, min_cosine); F(rm_diff_options, min_top1); F(rm_diff_options, samples);
    F(rm_diff_options, seed); F(rm_diff_options, n_sets); F(rm_diff_options, sets); F(rm_diff_options, folder);
    F(rm_diff_options, save_inputs); F(rm_diff_options, threads); F(rm_diff_options, layers);
    S(rm_diff_stats); F(rm_diff_stats, max_abs); F(rm_diff_stats, max_rel); F(rm_diff_stats, mean_abs);
    F(rm_diff_stats, cosine); F(rm_diff_stats, cosine_mean); F(rm_diff_stats, n); F(rm_diff_stats, n_fail);
    F(rm_diff_stats, pass);
    S(rm_diff_output); F(rm_diff_output, name); F(rm_diff_output, rank); F(rm_diff_output, dims);
    F(rm_diff_output, s); F(rm_diff_output, scale); F(rm_diff_output, atol); F(rm_diff_output, classes);
    F(rm_diff_output, top1); F(rm_diff_output, top5); F(rm_diff_output, aligned); F(rm_diff_output, note);
    F(rm_diff_output, n_top); F(rm_diff_output, top_a); F(rm_diff_output, top_b); F(rm_diff_output, top_va);
    F(rm_diff_output, top_vb);
    S(rm_diff_layer); F(rm_diff_layer, path); F(rm_diff_layer, type); F(rm_diff_layer, tensor);
    F(rm_diff_layer, s); F(rm_diff_layer, comparable); F(rm_diff_layer, aligned); F(rm_diff_layer, note);
    F(rm_diff_layer, rank_a); F(rm_diff_layer, rank_b); F(rm_diff_layer, dims_a); F(rm_diff_layer, dims_b);
    S(rm_diff_channels); F(rm_diff_channels, layer); F(rm_diff_channels, sample); F(rm_diff_channels, n);
    F(rm_diff_channels, max_abs); F(rm_diff_channels, scale);
    S(rm_diff_result); F(rm_diff_result, pass); F(rm_diff_result, atol); F(rm_diff_result, atol_scale);
    F(rm_diff_result, rtol); F(rm_diff_result, min_cosine); F(rm_diff_result, min_top1);
    F(rm_diff_result, samples); F(rm_diff_result, seed); F(rm_diff_result, n_outputs);
    F(rm_diff_result, outputs); F(rm_diff_result, n_layers); F(rm_diff_result, layers);
    F(rm_diff_result, first_divergent); F(rm_diff_result, channels); F(rm_diff_result, history_a);
    F(rm_diff_result, history_b); F(rm_diff_result, n_inputs); F(rm_diff_result, inputs);
    S(rm_diff_input); F(rm_diff_input, name); F(rm_diff_input, dtype); F(rm_diff_input, rank);
    F(rm_diff_input, dims);
    S(rm_report_info); F(rm_report_info, model_a); F(rm_report_info, model_b); F(rm_report_info, inputs);
    S(rm_file_id); F(rm_file_id, dev); F(rm_file_id, ino);
    S(rm_output); F(rm_output, path); F(rm_output, dir); F(rm_output, name); F(rm_output, dir_id);
    F(rm_output, exists); F(rm_output, id);
    printf("\n");
    return 0;
}
